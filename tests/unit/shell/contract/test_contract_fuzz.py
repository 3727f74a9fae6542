"""The contract under fuzzing: never raises, accounts for every sample, keeps every good one.

Volume from the seeded mutator (`vigil.tools.bench.fuzz`), structure from Hypothesis. With the
pipeline's fuzz tests, more than 100,000 generated payloads run on every test run; `vigil bench
fuzz --payloads N` runs longer.
"""

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.shell.contract.validation import check_vitals_payload
from vigil.tools.bench.fuzz import Accounts, account, fuzz_contract

SEEDED_RUNS = 4
PAYLOADS_PER_RUN = 22_000
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
TOPIC = "vigil/v1/devices/wr-1/vitals"


@pytest.mark.parametrize("seed", range(SEEDED_RUNS))
def test_seeded_mutants_interleaved_with_good_payloads(seed):
    """Good payloads all accepted (checked inside), every mutant's samples accounted for."""
    accounts = fuzz_contract(PAYLOADS_PER_RUN, seed=seed)
    assert accounts.payloads == PAYLOADS_PER_RUN
    assert accounts.good > PAYLOADS_PER_RUN // 5 and accounts.mutants > PAYLOADS_PER_RUN // 2
    assert accounts.refused_whole > 0 and accounts.samples_refused > 0
    # Every kind of mutation ran, and the refusals name their reasons.
    assert len(accounts.by_mutation) == 9
    assert {"malformed_json", "schema_invalid", "implausible_value", "oversize"} <= set(accounts.by_reason)


# -- Hypothesis: documents near the contract, with any JSON where a value belongs -----------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=8)


def _ts(offset_s: int) -> str:
    return (NOW + timedelta(seconds=offset_s)).isoformat()


GOOD_VALUES = {
    "ts": st.integers(-3600, 0).map(_ts), "seq": st.integers(0, 2**53), "hr_bpm": st.floats(1, 300),
    "spo2_pct": st.floats(1, 100), "rr_per_min": st.floats(1, 80), "temp_c": st.floats(25, 45),
    "steps": st.integers(0, 1000), "accel_g": st.floats(0, 16), "battery_pct": st.floats(0, 100),
    "skin_contact": st.booleans(), "manual": st.fixed_dictionaries({}, optional={
        "on_oxygen": st.booleans(), "acvpu": st.sampled_from("ACVPU")}),
}


@st.composite
def samples(draw) -> dict:
    sample = {"ts": draw(GOOD_VALUES["ts"]), "seq": draw(GOOD_VALUES["seq"])}
    for name in draw(st.sets(st.sampled_from(sorted(GOOD_VALUES)), max_size=5)):
        hostile = draw(st.integers(0, 3)) == 0
        sample[name] = draw(JSON_VALUES if hostile else GOOD_VALUES[name])
    return sample


@st.composite
def documents(draw) -> bytes:
    document = {"v": draw(st.sampled_from([1, 1, 1, 1, "1", True, 1.0, 2])), "device_id": "wr-1",
                "samples": draw(st.lists(samples(), min_size=0, max_size=4))}
    if draw(st.booleans()):
        document[draw(st.sampled_from(["firmware", "extra", "device_id"]))] = draw(JSON_VALUES)
    raw = json.dumps(document).encode()
    cut = draw(st.integers(0, 20))
    return raw[:-cut] if cut and draw(st.integers(0, 9)) == 0 else raw


@settings(max_examples=600, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_hypothesis_documents_are_accounted_for(raw):
    checked = check_vitals_payload(TOPIC, raw, received_at=NOW.timestamp(), patient_for_device={"wr-1": "pt-1"}.get)
    account(raw, checked, Accounts())
    for reading in checked.readings:  # what was taken is what was sent, with the sent types
        assert isinstance(reading.seq, int) and not isinstance(reading.seq, bool)
        for value in (reading.hr, reading.spo2, reading.rr, reading.temp, reading.accel, reading.battery):
            assert value is None or type(value) is float


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(raw):
    checked = check_vitals_payload(TOPIC, raw, received_at=NOW.timestamp(), patient_for_device={"wr-1": "pt-1"}.get)
    account(raw, checked, Accounts())
