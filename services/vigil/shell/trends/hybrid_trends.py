"""The scaled path's `TrendStore`: the ward from PostgreSQL, a patient's charts from InfluxDB.

Why two stores behind one interface: the ward overview asks for every patient at once (1,000
patients' latest values and last-hour sparklines), and InfluxDB answers that per series and per
row: 6 s p95 on the bench (docs/benchmarks.md), however the Flux is shaped, against a 500 ms
target. PostgreSQL answers the same question from `vital_latest` (one row per patient and vital)
and the last hour of `vital_rollups` (one row per patient and minute) by index. A chart asks for
one patient over up to 7 days, which InfluxDB's `rollup_1m` answers well within its target, and
InfluxDB keeps the long history.

The processor keeps PostgreSQL's rows current: it stores each batch's readings and scores with
`SqlStore.write` in the same step as the alert rows, before the batch is acknowledged, and the
rollups count only the rows that insert added (a replayed batch or a device's duplicate counts
once; stores/rollups.py). So the ward is as fresh as the stored readings, not a minute behind.
"""

from __future__ import annotations

from collections.abc import Sequence

from vigil.shell.trends.model import SPARKLINE_VITALS, Bucket, PatientLatest, TrendStore, WardRow


class HybridTrends:
    """`TrendStore`: `latest` and `ward` from `ward_store`, `series` from `chart_store`."""

    def __init__(self, ward_store: TrendStore, chart_store: TrendStore) -> None:
        self.ward_store = ward_store
        self.chart_store = chart_store

    def series(self, patient_id: str, vital: str, start: float, end: float, step: int) -> list[Bucket]:
        return self.chart_store.series(patient_id, vital, start, end, step)

    def latest(self, patient_ids: list[str]) -> dict[str, PatientLatest]:
        return self.ward_store.latest(patient_ids)

    def ward(self, patient_ids: list[str], now: float, vitals: Sequence[str] = SPARKLINE_VITALS) -> list[WardRow]:
        return self.ward_store.ward(patient_ids, now, vitals)

    def raw_series(self, patient_id: str, vital: str, start: float, end: float, step: int) -> list[Bucket]:
        """The charts' baseline from every raw point (the chart store's)."""
        return self.chart_store.raw_series(patient_id, vital, start, end, step)  # type: ignore[attr-defined]


def scaled_trends(settings: object, engine: object, influx_client: object) -> TrendStore:
    """The scaled path's `TrendStore` from the settings: the hybrid while the processor keeps the
    SQL rows (`VIGIL_WARD_TRENDS_SQL`, on by default), else InfluxDB alone. Bucket and org from
    the settings, so a rollup bucket of its own is one setting away."""
    from vigil.shell.trends.influx_trends import InfluxTrends
    from vigil.shell.trends.sql_trends import SqlTrends

    charts = InfluxTrends(influx_client, settings.influx_org, settings.influx_bucket)  # type: ignore[attr-defined]
    if not settings.ward_trends_sql:  # type: ignore[attr-defined]
        return charts
    return HybridTrends(SqlTrends(engine), charts)  # type: ignore[arg-type]
