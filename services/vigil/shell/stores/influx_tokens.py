"""What each service may do to the InfluxDB bucket: one token per service, scoped to the bucket and to
read or write (docs/security.md, "Service credentials").

- the processor workers write the series (readings and model scores), and read nothing;
- the notifier (the scaled path's HTTP API: the patient page's charts), other readers of trends
  (`vigil bench trends`) and Grafana only read;
- the gateway has no token: it never touches series.

The operator's all-access token stays with the owner: setting up, buckets, the rollup task (which
InfluxDB runs with the token that created it: `vigil trends install-task`), rebuilds, backups.
deploy/local/lib/influxdb.sh creates the same tokens for its `vitals` bucket with curl; this module
creates them for any bucket (the integration tests' per-run buckets), and test_store_rights checks
that both agree with the table below.
"""

from __future__ import annotations

from typing import Any

INFLUX_SERVICE_RIGHTS: dict[str, str] = {"processor": "write", "notifier": "read", "trends": "read", "grafana": "read"}


def description_of(service: str, bucket: str, rollup_bucket: str | None = None) -> str:
    """How a service's token is named (deploy/local finds its tokens again by this). A reader's
    token also reads the rollups' own bucket, when there is one (VIGIL_INFLUX_ROLLUP_BUCKET)."""
    right = INFLUX_SERVICE_RIGHTS[service]
    extra = f" {rollup_bucket}" if right == "read" and rollup_bucket and rollup_bucket != bucket else ""
    return f"vigil-{service}: {right} {bucket}{extra}"


def create_service_token(client: Any, bucket: Any, service: str, rollup_bucket: Any = None) -> Any:
    """A new token for `service` on `bucket` (an influxdb_client Bucket; a reader's also on
    `rollup_bucket`), with exactly its one right. `client` holds a token that may create
    authorizations (the operator's). Returns the Authorization (`.token` is the secret, `.id` what deletes it)."""
    from influxdb_client import Authorization, Permission, PermissionResource

    right = INFLUX_SERVICE_RIGHTS[service]
    buckets = [bucket] + ([rollup_bucket] if right == "read" and rollup_bucket is not None
                          and rollup_bucket.id != bucket.id else [])
    return client.authorizations_api().create_authorization(authorization=Authorization(
        org_id=bucket.org_id, description=description_of(service, bucket.name, rollup_bucket and rollup_bucket.name),
        permissions=[Permission(action=right, resource=PermissionResource(type="buckets", id=b.id, org_id=b.org_id))
                     for b in buckets]))
