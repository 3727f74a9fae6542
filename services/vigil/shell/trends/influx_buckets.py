"""The scaled path's InfluxDB retention: one bucket per kept-for-how-long (docs/data.md, "Retention").

InfluxDB keeps data per bucket, not per measurement: a bucket's retention rule drops every point
older than it (whole shards, at InfluxDB's own retention check, every 30 minutes by default) and
refuses writes of points already older. So the raw readings and scores live in VIGIL_INFLUX_BUCKET,
kept VIGIL_RETAIN_READINGS_DAYS, and the per-minute rollups (`rollup_1m`, written by the task in
influx_rollup.py) in VIGIL_INFLUX_ROLLUP_BUCKET, kept VIGIL_RETAIN_ROLLUPS_DAYS (longer). With no
rollup bucket set the rollups share the readings' bucket and its retention, as before.

`apply_retention` sets both rules through the InfluxDB API (creating the rollup bucket when it is
missing); `vigil retention influx` runs it, and deploy/local does the same with curl. Idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("vigil.retention")

DAY_S = 86400
MIN_RETENTION_S = 3600  # InfluxDB refuses a shorter rule


def retention_seconds(days: float) -> int:
    """A VIGIL_RETAIN_*_DAYS value as InfluxDB's rule: 0 keeps forever; else at least an hour."""
    if days <= 0:
        return 0
    seconds = int(round(days * DAY_S))
    if seconds < MIN_RETENTION_S:
        raise ValueError(f"InfluxDB keeps a bucket at least an hour ({days:g} days asked)")
    return seconds


def shard_group_seconds(retention_s: int) -> int:
    """InfluxDB's own defaults for a rule (a shard group is never longer than the rule): retention
    drops whole shard groups, so a point goes at most one shard group after its retention."""
    if retention_s == 0 or retention_s > 180 * DAY_S:
        return 7 * DAY_S
    return DAY_S if retention_s >= 2 * DAY_S else 3600


@dataclass(frozen=True, slots=True)
class BucketRetention:
    bucket: str
    retention_s: int
    changed: bool  # created, or its rule replaced
    created: bool = False


def apply_bucket(client: Any, org: str, name: str, days: float, *, create: bool) -> BucketRetention:
    """Set bucket `name`'s retention to `days` (0: forever); create it when missing and `create`."""
    from influxdb_client import BucketRetentionRules

    seconds = retention_seconds(days)
    rules = [BucketRetentionRules(type="expire", every_seconds=seconds, shard_group_duration_seconds=shard_group_seconds(seconds))]
    buckets = client.buckets_api()
    bucket = buckets.find_bucket_by_name(name)
    if bucket is None:
        if not create:
            raise LookupError(f"InfluxDB bucket {name!r} not found in org {org!r}")
        buckets.create_bucket(bucket_name=name, org=org, retention_rules=rules)
        log.info("influx bucket created", extra={"bucket": name, "retention_s": seconds})
        return BucketRetention(name, seconds, changed=True, created=True)
    have = [(r.every_seconds or 0) for r in (bucket.retention_rules or [])]
    if (have or [0]) == [seconds] and (not bucket.retention_rules or
                                       bucket.retention_rules[0].shard_group_duration_seconds == rules[0].shard_group_duration_seconds):
        return BucketRetention(name, seconds, changed=False)
    bucket.retention_rules = rules
    buckets.update_bucket(bucket)
    log.warning("influx bucket retention changed", extra={"bucket": name, "retention_s": seconds,
                                                          "was_s": have[0] if have else 0})
    return BucketRetention(name, seconds, changed=True)


def apply_retention(client: Any, org: str, readings_bucket: str, readings_days: float,
                    rollup_bucket: str, rollups_days: float) -> list[BucketRetention]:
    """The readings bucket (must exist: it is made where InfluxDB is set up) kept `readings_days`;
    the rollup bucket, created when missing, kept `rollups_days`. One bucket for both: the
    readings' rule, with a WARNING that rollups are kept no longer than readings."""
    done = [apply_bucket(client, org, readings_bucket, readings_days, create=False)]
    if rollup_bucket == readings_bucket:
        if rollups_days != readings_days:
            log.warning("rollups share the readings' bucket and its retention: set VIGIL_INFLUX_ROLLUP_BUCKET to keep "
                        "them VIGIL_RETAIN_ROLLUPS_DAYS", extra={"bucket": readings_bucket})
        return done
    done.append(apply_bucket(client, org, rollup_bucket, rollups_days, create=True))
    return done
