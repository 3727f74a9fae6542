"""Back up and restore one InfluxDB bucket (the vitals series) with InfluxDB's own backup protocol.

InfluxData's tool for this is `influx backup --bucket` / `influx restore --bucket`, but the
`influx` CLI is a separate Go program that is not served by the Go module proxy here, so this
module speaks the same HTTP routes the CLI calls (InfluxDB 2.1+):

- backup: `GET /api/v2/backup/metadata` (a multipart snapshot: the KV store, the SQL store and
  the bucket manifests — only the bucket manifest is kept, the KV store holds every token and is
  not written anywhere), then `GET /api/v2/backup/shards/{id}` for each shard of the bucket: the
  server snapshots the shard (cache flushed to TSM) and streams it as a tar, gzipped;
- restore: `POST /api/v2/restore/bucketMetadata` creates the bucket with its retention policy and
  shard groups and answers which new shard id stands for each old one, then
  `POST /api/v2/restore/shards/{new id}` loads each shard's tar.

Both need an operator (all-access) token: a bucket-scoped token is refused by the server.

Every shard file is checked against the SHA-256 in the manifest before anything is restored, and
a restore into an existing bucket is refused (a restore never merges into live data).
"""

from __future__ import annotations

import email.parser
import email.policy
import gzip
import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from vigil.shell.stores.backup import sha256_of

MANIFEST = "influx-manifest.json"
KIND = "vigil-influx-bucket-backup"


class InfluxBackupFailed(RuntimeError):
    """The server refused, a file is missing or damaged, or the bucket already exists."""


@dataclass(frozen=True)
class InfluxServer:
    url: str
    token: str
    org: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url.rstrip("/"), headers={"Authorization": f"Token {self.token}"},
                            timeout=httpx.Timeout(60.0, connect=5.0))


def _checked(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code >= 300:
        raise InfluxBackupFailed(f"{what}: InfluxDB answered {response.status_code}: {response.text[:300]}")
    return response


def _bucket_manifests(client: httpx.Client) -> list[dict]:
    """The `buckets` part of the metadata snapshot (the `kv` and `sql` parts are dropped unread)."""
    response = _checked(client.get("/api/v2/backup/metadata"), "metadata snapshot")
    raw = b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n" + response.content
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "buckets":
            return json.loads(part.get_payload(decode=True))
    raise InfluxBackupFailed("metadata snapshot: no `buckets` part")



def _shard_ids(manifest: dict) -> list[int]:
    return [shard["id"] for policy in manifest.get("retentionPolicies", [])
            for group in policy.get("shardGroups", []) for shard in group.get("shards", [])]


def _download_shard(client: httpx.Client, shard_id: int, target: Path, tries: int = 10) -> bool:
    """Stream one shard's snapshot to `target` (gzipped tar); False when retention removed it meanwhile.

    A shard that is writing its cache to disk at that moment refuses a snapshot ("snapshots
    disabled", a 500): that is transient, so the request is tried again, up to `tries` times."""
    for attempt in range(tries):
        try:
            return _download_shard_once(client, shard_id, target)
        except InfluxBackupFailed as exc:
            if "answered 500" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _download_shard_once(client: httpx.Client, shard_id: int, target: Path) -> bool:
    with client.stream("GET", f"/api/v2/backup/shards/{shard_id}", headers={"Accept-Encoding": "gzip"}) as response:
        if response.status_code == 404:
            return False
        if response.status_code >= 300:
            response.read()
            _checked(response, f"shard {shard_id}")
        gzipped = response.headers.get("content-encoding") == "gzip"
        with target.open("wb") as raw, (raw if gzipped else gzip.GzipFile(fileobj=raw, mode="wb")) as out:
            for block in response.iter_raw():
                out.write(block)
    return True


def back_up_bucket(server: InfluxServer, bucket: str, out_dir: Path) -> dict:
    """Write the bucket's manifest and shard snapshots into `out_dir` (created; must be empty)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise InfluxBackupFailed(f"{out_dir} is not empty")
    started = time.monotonic()
    with server.client() as client:
        matching = [m for m in _bucket_manifests(client)
                    if m.get("bucketName") == bucket and m.get("organizationName") == server.org]
        if not matching:
            raise InfluxBackupFailed(f"no bucket {bucket!r} in organisation {server.org!r}")
        metadata = matching[0]
        shards: dict[str, dict] = {}
        for shard_id in _shard_ids(metadata):
            target = out_dir / f"shard-{shard_id}.tar.gz"
            if _download_shard(client, shard_id, target):
                shards[str(shard_id)] = {"file": target.name, "bytes": target.stat().st_size, "sha256": sha256_of(target)}
    manifest = {"kind": KIND, "version": 1, "org": server.org, "bucket": bucket, "metadata": metadata,
                "shards": shards, "seconds": round(time.monotonic() - started, 3)}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _read_manifest(from_dir: Path) -> dict:
    try:
        manifest = json.loads((from_dir / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise InfluxBackupFailed(f"no readable {MANIFEST} in {from_dir}: {exc}") from exc
    if manifest.get("kind") != KIND or manifest.get("version") != 1:
        raise InfluxBackupFailed(f"{from_dir / MANIFEST} is not a Vigil InfluxDB bucket backup")
    for shard_id, entry in manifest["shards"].items():
        path = from_dir / entry["file"]
        if not path.is_file() or sha256_of(path) != entry["sha256"]:
            raise InfluxBackupFailed(f"shard {shard_id}: {path.name} is missing or does not match its SHA-256")
    return manifest


def _org_id(client: httpx.Client, org: str) -> str:
    orgs = _checked(client.get("/api/v2/orgs", params={"org": org}), f"organisation {org!r}").json().get("orgs", [])
    if not orgs:
        raise InfluxBackupFailed(f"no organisation {org!r} on the server")
    return orgs[0]["id"]


def restore_bucket(server: InfluxServer, from_dir: Path, bucket: str | None = None) -> dict:
    """Create `bucket` (default: the backed-up name) from the backup; refused if it exists."""
    manifest = _read_manifest(from_dir)
    name = bucket or manifest["bucket"]
    with server.client() as client:
        existing = client.get("/api/v2/buckets", params={"org": server.org, "name": name})
        if existing.status_code == 200 and existing.json().get("buckets"):
            raise InfluxBackupFailed(f"bucket {name!r} exists: delete or rename it first (a restore never merges)")
        metadata = dict(manifest["metadata"], bucketName=name, organizationName=server.org,
                        organizationID=_org_id(client, server.org))
        mapped = _checked(client.post("/api/v2/restore/bucketMetadata", json=metadata), "restore bucket").json()
        new_ids = {str(m["oldId"]): m["newId"] for m in mapped.get("shardMappings", [])}
        for shard_id, entry in manifest["shards"].items():
            if shard_id not in new_ids:
                raise InfluxBackupFailed(f"the server mapped no new shard for shard {shard_id}")
            with (from_dir / entry["file"]).open("rb") as body:
                _checked(client.post(f"/api/v2/restore/shards/{new_ids[shard_id]}", content=body,
                                     headers={"Content-Type": "application/octet-stream", "Content-Encoding": "gzip"}),
                         f"restore shard {shard_id}")
    return {"bucket": name, "bucket_id": mapped.get("id"), "shards": len(manifest["shards"])}

