"""Series to InfluxDB: batched line-protocol writes, retried with backoff until they land.

Points are `vitals,patient_id=…,device_id=… field=… <ns>`: measurement per kind, patient and
device as tags, nanosecond time. InfluxDB overwrites a point with the same measurement, tags
and time, so a replayed batch changes nothing. While InfluxDB is down the write keeps retrying
and the processor stops taking new records: Kafka keeps them, nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from vigil.shell.stores.rows import ReadingRow, ScoreRow

log = logging.getLogger("vigil.influx")

FIELDS = ("hr", "spo2", "rr", "temp", "sbp", "dbp", "accel", "battery")
INT_FIELDS = ("seq", "steps", "news2")
# Where each field sits in a ReadingRow: indexing a tuple is the cheapest read (one point a sample).
_FIELDS_AT = tuple((name, ReadingRow._fields.index(name)) for name in FIELDS)
_INT_FIELDS_AT = tuple((name, ReadingRow._fields.index(name)) for name in INT_FIELDS)


def _escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def line_for(row: ReadingRow) -> str:
    """One reading row (as the pipeline stores it) as InfluxDB line protocol."""
    fields = [f"{name}={float(row[at])!r}" for name, at in _FIELDS_AT if row[at] is not None]
    fields += [f"{name}={int(row[at])}i" for name, at in _INT_FIELDS_AT if row[at] is not None]
    if row.news2_partial is not None:
        fields.append(f"news2_partial={'true' if row.news2_partial else 'false'}")
    if row.flags:
        fields.append('flags="' + str(row.flags).replace('"', '\\"') + '"')
    tags = f"patient_id={_escape_tag(str(row.patient_id))},device_id={_escape_tag(str(row.device_id))}"
    return f"vitals,{tags} {','.join(fields)} {int(round(float(row.t) * 1e9))}"


def score_line(row: ScoreRow) -> str:
    """One model score as `scores,patient_id=…,model_version=… anomaly=…,risk=… <ns>`."""
    tags = f"patient_id={_escape_tag(str(row.patient_id))},model_version={_escape_tag(str(row.model_version))}"
    return f"scores,{tags} anomaly={float(row.anomaly)!r},risk={float(row.risk)!r} {int(round(float(row.t) * 1e9))}"


class InfluxSeriesWriter:
    def __init__(self, url: str, token: str | None, org: str, bucket: str) -> None:
        self.client = InfluxDBClient(url=url, token=token, org=org, timeout=10_000)
        self.write_api = self.client.write_api(write_options=SYNCHRONOUS)
        self.org, self.bucket = org, bucket
        self.failures = 0
        self.healthy = True

    def write_now(self, lines: list[str]) -> None:
        if lines:
            self.write_api.write(bucket=self.bucket, org=self.org, record="\n".join(lines), write_precision="ns")

    async def write(self, rows: list[ReadingRow]) -> None:
        """Reading rows (as the pipeline stores them), retried until they land."""
        await self.write_lines([line_for(row) for row in rows])

    async def write_scores(self, rows: list[ScoreRow]) -> None:
        """Model scores as `scores,patient_id=…,model_version=… anomaly=…,risk=… <ns>`."""
        await self.write_lines([score_line(row) for row in rows])

    async def write_lines(self, rows: list[str], *, max_backoff_s: float = 10.0) -> None:
        """Write, retrying with exponential backoff for as long as it takes."""
        if not rows:
            return
        delay = 0.2
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.write_now, rows)
                self.healthy = True
                return
            except Exception as exc:
                self.failures += 1
                self.healthy = False
                log.warning("influx write failed; retrying", extra={"points": len(rows), "retry_in_s": delay,
                                                                  "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_backoff_s)

    def close(self) -> None:
        self.client.close()
