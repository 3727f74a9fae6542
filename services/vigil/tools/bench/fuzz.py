"""`vigil bench fuzz`: hostile payloads, interleaved with good ones, through the contract and the pipeline.

A seeded mutator makes the volume cheaply: good batches from dedicated devices, and mutants
(bit flips, truncation, deep nesting, type swaps, huge numbers, unicode, NaN, wrong version or
timestamps, extra keys, many values, oversize) of batches from one other device, so that a
mutant can never touch a good device's sequence numbers. The same checks run in the unit tests
(tests/unit/shell/contract/test_contract_fuzz.py, tests/unit/shell/pipeline/test_pipeline_fuzz.py):

- the contract never raises, and accounts for every sample: a payload is refused whole (one
  rejection, no reading), or each of its samples is either a reading or a rejection, never both;
- through the whole pipeline, every good sample is stored, every mutant is either fully taken or
  dead-lettered, the dead letters equal `totals.rejected` and the metrics, and nothing is lost.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vigil.shell.contract.validation import CheckedPayload, check_vitals_payload
from vigil.shell.mqtt.message import Message
from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.pipeline import Pipeline
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.dead_letters import DeadLetterKeeper
from vigil.shell.stores.sql import SqlStore

GOOD_DEVICES = tuple(f"fz-good-{i}" for i in range(8))
MUTANT_DEVICE = "fz-bad"


def fuzz_registry() -> Registry:
    """Each good device and the mutants' device, each enrolled to its own patient."""
    devices = (*GOOD_DEVICES, MUTANT_DEVICE)
    return Registry(Roster.model_validate({"patients": [
        {"patient_id": "pt-" + d.removeprefix("fz-"), "devices": [{"device_id": d}]} for d in devices]}))


def patient_of(device_id: str) -> str:
    return "pt-" + device_id.removeprefix("fz-")


class GoodFleet:
    """Valid batches: per device, seq and ts strictly increase, values sound."""

    def __init__(self, rng: random.Random, now: float) -> None:
        self.rng = rng
        self.seq = dict.fromkeys((*GOOD_DEVICES, MUTANT_DEVICE), 0)
        self.t = dict.fromkeys((*GOOD_DEVICES, MUTANT_DEVICE), now - 5 * 86400)

    def batch(self, device_id: str) -> tuple[str, bytes, list[int]]:
        """Topic, payload and the sequence numbers it carries."""
        rng, samples = self.rng, []
        for _ in range(rng.randint(1, 4)):
            self.seq[device_id] += 1
            self.t[device_id] += 0.5
            sample: dict[str, object] = {
                "ts": datetime.fromtimestamp(self.t[device_id], timezone.utc).isoformat(), "seq": self.seq[device_id],
                "hr_bpm": rng.choice((72, 72.5, 80.0)), "spo2_pct": rng.choice((97, 96.5)), "rr_per_min": 15.0,
                "temp_c": 36.8, "battery_pct": 80.0, "skin_contact": True}
            if rng.random() < 0.2:
                sample.update(sbp_mmhg=120, dbp_mmhg=80)
            if rng.random() < 0.2:
                sample["manual"] = {"on_oxygen": False, "acvpu": "A"}
            samples.append(sample)
        document = {"v": 1, "device_id": device_id, "samples": samples}
        if rng.random() < 0.3:
            document["firmware"] = "1.4.2"
        raw = json.dumps(document, separators=(",", ":")).encode()
        return f"vigil/v1/devices/{device_id}/vitals", raw, [s["seq"] for s in samples]  # type: ignore[misc]


# Values a lax parser would coerce or choke on.
HOSTILE_VALUES: tuple[object, ...] = (
    True, False, None, "72", "72.0", "", "NaN", [], {}, [72], {"value": 72}, [[[[1]]]], -1, 0, 1.0, 2**53 + 1,
    2**64, 10**30, 1e308, -1e308, 5e-324, "1795564740", 1795564740, "2026-11-24T11:59:00", "\ud800", "\u0000",
    "\U0001F600" * 70, "x" * 2000,
)
FIELDS = ("ts", "seq", "hr_bpm", "spo2_pct", "rr_per_min", "temp_c", "sbp_mmhg", "dbp_mmhg", "steps", "accel_g",
          "battery_pct", "skin_contact", "manual", "extra")


def _type_swap(rng: random.Random, raw: bytes) -> bytes:
    document = json.loads(raw)
    roll = rng.random()
    if roll < 0.15:
        document["v"] = rng.choice(("1", True, 1.0, 2, None, [1]))
    elif roll < 0.25:
        document[rng.choice(("device_id", "firmware", "samples", "extra"))] = rng.choice(HOSTILE_VALUES)
    else:
        sample = rng.choice(document["samples"])
        sample[rng.choice(FIELDS)] = rng.choice(HOSTILE_VALUES)
    return json.dumps(document, separators=(",", ":")).encode()


def _bit_flips(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def _insert(rng: random.Random, raw: bytes, piece: bytes) -> bytes:
    at = rng.randrange(len(raw) + 1)
    return raw[:at] + piece + raw[at:]


def _deep(rng: random.Random, raw: bytes) -> bytes:
    """Nesting: the whole payload, or one sample's heart rate (a shallow one is that sample's problem)."""
    depth = rng.choice((5, 9, 50, 300, 5000, 30_000))
    opening, closing = rng.choice(((b"[", b"]"), (b'{"a":', b"}"), (b"[{", b"}]")))
    nested = opening * depth + b"1" + closing * depth * rng.randint(0, 1)
    return nested if rng.random() < 0.4 else raw.replace(b'"hr_bpm":', b'"hr_bpm":' + nested + b',"x":', 1)


def _huge_number(rng: random.Random, raw: bytes) -> bytes:
    """A number no float holds, or that is not JSON (NaN, hex, leading zeros, a bare dot)."""
    number = rng.choice((b"9" * rng.choice((20, 400, 5000)), b"1e400", b"-1e400", b"1e-400", b"NaN", b"Infinity",
                         b"-Infinity", b"0x10", b"01", b"1.", b".5", b"+1"))
    key = rng.choice((b'"seq":', b'"hr_bpm":', b'"spo2_pct":'))
    return raw.replace(key, key + number + b',"x":', 1)


def _unicode(rng: random.Random, raw: bytes) -> bytes:
    piece = rng.choice(("\ud800", "\udc00", "\u0000", "\U0001F600", "é", "\u202e", "\\", '"')).encode(
        "utf-8", "surrogatepass")
    return rng.choice((_insert(rng, raw, piece), _insert(rng, raw, b"\xff\xfe"), raw.replace(b"fz-bad", b"fz-b\\u0000d"),
                       raw.replace(b"1.4.2", b"\\ud800", 1), _insert(rng, raw, b"\\u12")))


def _structure(rng: random.Random, raw: bytes) -> bytes:
    at = rng.randrange(len(raw))
    roll = rng.random()
    if roll < 0.25:
        return raw[:at] + raw[at + 1:]  # one byte gone
    if roll < 0.5:
        return raw[:at] + raw[at:at + rng.randint(1, 40)] + raw[at:]  # a slice doubled
    if roll < 0.7:
        return raw.replace(b"]", b"}", 1) if rng.random() < 0.5 else raw.replace(b'"', b"", 1)
    if roll < 0.85:
        many = b",".join([b"0"] * rng.choice((100, 10_000)))
        return raw.replace(b'"samples":[', b'"samples":[' + many + b",", 1)
    return b'{"v":1,"device_id":"fz-bad","samples":[' + b",".join([b"{}"] * rng.choice((601, 1300))) + b"]}"


MUTATIONS = (
    ("truncate", lambda rng, raw: raw[:rng.randrange(len(raw))]),
    ("bit_flips", _bit_flips),
    ("deep_nesting", _deep),
    ("type_swap", _type_swap),
    ("huge_number", _huge_number),
    ("unicode", _unicode),
    ("structure", _structure),
    ("timestamp", lambda rng, raw: raw.replace(b'"ts":"', b'"ts":"' + rng.choice((b"x", b"1795564740", b"2026")), 1)
     if rng.random() < 0.5 else raw.replace(b'"ts":"', b'"ts":1795564740,"t":"', 1)),
    ("oversize", lambda rng, raw: raw[:-2] + b',"pad":"' + b"x" * 70_000 + b'"}]}'),
)
WEIGHTS = (10, 14, 6, 30, 10, 10, 14, 5, 1)


def mutate(rng: random.Random, raw: bytes) -> tuple[str, bytes]:
    """One to three mutations of a valid payload; the name of the first one."""
    names = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        name, operator = rng.choices(MUTATIONS, WEIGHTS)[0]
        if name == "type_swap":
            try:
                raw = operator(rng, raw)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
                continue  # already not a document to swap types in: another mutation did its work
        else:
            raw = operator(rng, raw) if raw else raw
        names.append(name)
    return (names[0] if names else "none"), raw


@dataclass(slots=True)
class Accounts:
    """What a fuzz run saw: payloads by kind and outcome, samples accepted and refused."""

    payloads: int = 0
    good: int = 0
    mutants: int = 0
    refused_whole: int = 0
    samples_accepted: int = 0
    samples_refused: int = 0
    by_mutation: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)


def account(raw: bytes, checked: CheckedPayload, accounts: Accounts) -> None:
    """Raise AssertionError unless every sample of the payload is accounted for exactly once."""
    accounts.payloads += 1
    for rejection in checked.rejections:
        reason = str(rejection.reason)
        accounts.by_reason[reason] = accounts.by_reason.get(reason, 0) + 1
    whole = [r for r in checked.rejections if r.sample_index is None]
    if whole:
        assert len(checked.rejections) == 1 and not checked.readings, checked.rejections
        accounts.refused_whole += 1
        return
    samples = json.loads(raw)["samples"]  # the pre-scan passed: bounded, safe to parse here
    indexes = [r.sample_index for r in checked.rejections]
    assert len(set(indexes)) == len(indexes) and all(0 <= i < len(samples) for i in indexes), indexes
    assert len(checked.readings) + len(indexes) == len(samples), (len(checked.readings), indexes, len(samples))
    accounts.samples_accepted += len(checked.readings)
    accounts.samples_refused += len(indexes)


def fuzz_contract(payloads: int, seed: int = 1, good_share: float = 0.3) -> Accounts:
    """`payloads` payloads (good and mutants, interleaved) through the contract alone."""
    rng = random.Random(seed)
    now = time.time()
    fleet, registry, accounts = GoodFleet(rng, now), fuzz_registry(), Accounts()
    for _ in range(payloads):
        if rng.random() < good_share:
            topic, raw, seqs = fleet.batch(rng.choice(GOOD_DEVICES))
            checked = check_vitals_payload(topic, raw, received_at=now, patient_for_device=registry.patient_for_device)
            assert not checked.rejections and [r.seq for r in checked.readings] == seqs, checked.rejections
            accounts.good += 1
        else:
            topic, base, _ = fleet.batch(MUTANT_DEVICE)
            name, raw = mutate(rng, base)
            if rng.random() < 0.02:
                topic = rng.choice(("vigil/v1/devices/fz-good-0/vitals", "vigil/v1/devices//vitals", "elsewhere"))
            checked = check_vitals_payload(topic, raw, received_at=now, patient_for_device=registry.patient_for_device)
            accounts.mutants += 1
            accounts.by_mutation[name] = accounts.by_mutation.get(name, 0) + 1
        account(raw, checked, accounts)
    return accounts


def mixed_messages(rng: random.Random, count: int, now: float) -> tuple[list[Message], dict[str, set[int]]]:
    """Good and mutant messages interleaved, each with its own receipt time; the good samples by patient."""
    fleet = GoodFleet(rng, now)
    messages, good = [], {patient_of(d): set() for d in GOOD_DEVICES}
    for i in range(count):
        received_at = now + i * 1e-4  # unique: a dead letter names its message by its receipt time
        if rng.random() < 0.4:
            device = rng.choice(GOOD_DEVICES)
            topic, raw, seqs = fleet.batch(device)
            good[patient_of(device)].update(seqs)
        else:
            topic, base, _ = fleet.batch(MUTANT_DEVICE)
            raw = mutate(rng, base)[1]
            if rng.random() < 0.05:  # a status message, possibly hostile
                topic, raw = f"vigil/v1/devices/{MUTANT_DEVICE}/status", rng.choice((
                    b'{"v":1,"device_id":"fz-bad","state":"online"}', b'{"v":"1","device_id":"fz-bad","state":"online"}',
                    b"[" * 30_000, raw))
        messages.append(Message(topic, raw, received_at))
    return messages, good


def run_pipeline(pipeline: Pipeline, store: SqlStore, messages: list[Message], good: dict[str, set[int]],
                 now: float, batch: int = 100) -> dict[str, int]:
    """Messages through the pipeline and into the store, batch after batch; raise AssertionError
    unless every good sample is stored and every other message is taken whole or dead-lettered."""
    registry = pipeline.registry
    stored: dict[str, set[int]] = {}
    rows: dict[str, int] = {}  # a counter reset may store a seq again: count rows, not seqs
    dead_by_message: dict[float, int] = {}
    expected_bad_readings = bad_core_rejections = statuses = 0
    for start in range(0, len(messages), batch):
        decision = pipeline.process(messages[start:start + batch], now=now)
        store.write(decision.batch)
        for row in decision.batch.readings:
            stored.setdefault(row.patient_id, set()).add(row.seq)
            rows[row.patient_id] = rows.get(row.patient_id, 0) + 1
        for dead in decision.batch.dead_letters:
            assert dead.reason != "internal_error", dead.detail  # counted, but a bug to fix
            dead_by_message[dead.received_at] = dead_by_message.get(dead.received_at, 0) + 1
            bad_core_rejections += dead.reason in ("duplicate_seq", "out_of_order_seq")
        statuses += len(decision.batch.device_status)
    for message in messages:
        if message.topic.endswith("/status"):
            continue
        oracle = check_vitals_payload(message.topic, message.payload, received_at=message.received_at,
                                      patient_for_device=registry.patient_for_device, limits=pipeline.limits)
        if oracle.rejections:
            assert dead_by_message.get(message.received_at, 0) >= len(oracle.rejections), message.payload[:200]
        if oracle.patient_id == patient_of(MUTANT_DEVICE):
            expected_bad_readings += len(oracle.readings)
    for patient_id, seqs in good.items():
        assert seqs <= stored.get(patient_id, set()), f"{patient_id}: {sorted(seqs - stored.get(patient_id, set()))[:10]}"
    mutant_patient = patient_of(MUTANT_DEVICE)
    assert rows.get(mutant_patient, 0) + bad_core_rejections == expected_bad_readings, (
        rows.get(mutant_patient, 0), bad_core_rejections, expected_bad_readings)
    status_messages = sum(1 for m in messages if m.topic.endswith("/status"))
    dead_letters = sum(dead_by_message.values())
    rejected = sum(pipeline.totals.rejected.values())
    counted = sum(sample.value for metric in pipeline.metrics.rejected.collect() for sample in metric.samples
                  if sample.name.endswith("_total"))
    assert store.dead_letter_reasons() == dict(pipeline.totals.rejected)
    assert dead_letters == rejected == counted, (dead_letters, rejected, counted)
    assert statuses + sum(1 for m in messages if m.topic.endswith("/status") and m.received_at in dead_by_message) \
        == status_messages
    return {"messages": len(messages), "good_samples": sum(len(s) for s in good.values()),
            "readings_stored": sum(rows.values()), "dead_letters": dead_letters}


def bench_fuzz(payloads: int = 200_000, seed: int = 1) -> dict[str, object]:
    """The contract over `payloads` payloads, then the whole pipeline (with SQLite) over a tenth as many."""
    started = time.perf_counter()
    accounts = fuzz_contract(payloads, seed)
    contract_s = time.perf_counter() - started
    rng, now = random.Random(seed + 1), time.time()
    messages, good = mixed_messages(rng, max(1, payloads // 10), now)
    with tempfile.TemporaryDirectory() as directory:
        store = SqlStore(f"sqlite:///{Path(directory) / 'fuzz.sqlite'}")
        pipeline = Pipeline(fuzz_registry(), Metrics(), store, dead_letters=DeadLetterKeeper(limited=False))
        started = time.perf_counter()
        counts = run_pipeline(pipeline, store, messages, good, now)
        pipeline_s = time.perf_counter() - started
        store.engine.dispose()
    return {
        "contract": {"payloads": accounts.payloads, "good": accounts.good, "mutants": accounts.mutants,
                     "refused_whole": accounts.refused_whole, "samples_accepted": accounts.samples_accepted,
                     "samples_refused": accounts.samples_refused, "by_mutation": accounts.by_mutation,
                     "by_reason": accounts.by_reason, "payloads_per_s": round(accounts.payloads / contract_s)},
        "pipeline": {**counts, "rejected_by_reason": dict(pipeline.totals.rejected),
                     "messages_per_s_with_checks": round(len(messages) / pipeline_s)},
    }
