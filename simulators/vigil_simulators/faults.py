"""Bad payloads, as real devices and networks produce them, to prove nothing bad is silent."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

from vigil.shell.contract.topics import vitals_topic

# fault -> the rejection reason Vigil must give
FAULTS: dict[str, str] = {
    "malformed_json": "malformed_json",
    "wrong_type": "schema_invalid",
    "implausible_value": "implausible_value",
    "future_timestamp": "future_timestamp",
    "duplicate_batch": "duplicate_seq",
    "oversize": "oversize",
    "unknown_device": "unknown_device",
}


def corrupt(fault: str, batch: dict, rng: random.Random) -> tuple[str, bytes]:
    """A (topic, payload) that carries `fault`, made from a good batch of the same device."""
    device_id = str(batch["device_id"])
    topic = vitals_topic(device_id)
    good = json.dumps(batch, separators=(",", ":"))
    if fault == "malformed_json":
        return topic, good[: max(1, len(good) // 2)].encode()
    if fault == "wrong_type":
        broken = dict(batch, samples=[dict(s, hr_bpm="fast") for s in batch["samples"]])
        return topic, json.dumps(broken).encode()
    if fault == "implausible_value":
        # One impossible sample in an otherwise good batch: the good ones must still be kept.
        samples = [dict(s) for s in batch["samples"]]
        samples[rng.randrange(len(samples))]["spo2_pct"] = 140
        return topic, json.dumps(dict(batch, samples=samples)).encode()
    if fault == "future_timestamp":
        samples = [dict(s) for s in batch["samples"]]
        first = samples[0]
        future = datetime.fromisoformat(str(first["ts"])) + timedelta(days=2)
        samples[0] = dict(first, ts=future.isoformat())
        return topic, json.dumps(dict(batch, samples=samples)).encode()
    if fault == "duplicate_batch":
        return topic, good.encode()
    if fault == "oversize":
        return topic, (good + " " * (70 * 1024)).encode()
    if fault == "unknown_device":
        stranger = f"unenrolled-{rng.randrange(1000):03d}"
        return vitals_topic(stranger), json.dumps(dict(batch, device_id=stranger)).encode()
    raise ValueError(f"unknown fault {fault!r}")
