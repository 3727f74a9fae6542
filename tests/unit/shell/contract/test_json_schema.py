"""The exported JSON Schema is what the code generates, and refuses what the contract refuses."""

import json
from pathlib import Path

import jsonschema
import pytest

from vigil.shell.contract.json_schema import schema_texts, write_schemas

DOCS = Path(__file__).resolve().parents[4] / "docs" / "schema"
TS = "2026-11-24T11:59:00+00:00"


def test_the_exported_files_are_what_the_code_generates():
    """`vigil schema` was run after the last change to the contract."""
    texts = schema_texts()
    assert sorted(texts) == sorted(p.name for p in DOCS.glob("*.schema.json"))
    for filename, text in texts.items():
        assert (DOCS / filename).read_text(encoding="utf-8") == text, f"run `vigil schema`: {filename} is stale"


def test_write_schemas_writes_the_same_text(tmp_path):
    for path in write_schemas(tmp_path):
        assert path.read_text(encoding="utf-8") == schema_texts()[path.name]


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_texts()[name])
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def batch(**sample) -> dict:
    return {"v": 1, "device_id": "wr-1", "samples": [{"ts": TS, "seq": 1, **sample}]}


def test_good_payloads_pass_the_schema():
    vitals = validator("vitals-batch.v1.schema.json")
    vitals.validate(batch(hr_bpm=72, spo2_pct=97.5, sbp_mmhg=120, dbp_mmhg=80, skin_contact=True,
                          manual={"on_oxygen": False, "acvpu": "A"}))
    validator("device-status.v1.schema.json").validate({"v": 1, "device_id": "wr-1", "state": "online", "ts": TS})


@pytest.mark.parametrize("document", [
    batch(hr_bpm=True), batch(hr_bpm="72"), batch(seq="5"), batch(seq=5.5), batch(steps="3"), batch(skin_contact=1),
    batch(ts=1795564740), batch(ts="1795564740"), batch(ts="2026-11-24T11:59:00"), batch(manual={"on_oxygen": 1}),
    batch(sbp_mmhg=120), batch(dbp_mmhg=80), batch(hr_bpm=0), batch(spo2_pct=140), batch(heart=70),
    {**batch(), "v": "1"}, {**batch(), "v": True}, {**batch(), "v": 2}, {**batch(), "device_id": 7},
    {**batch(), "samples": []}, {**batch(), "extra": 1},
])
def test_what_the_contract_refuses_the_schema_refuses(document):
    from vigil.shell.contract.device import VitalsBatch

    with pytest.raises(jsonschema.ValidationError):
        validator("vitals-batch.v1.schema.json").validate(document)
    with pytest.raises(ValueError):
        VitalsBatch.model_validate_json(json.dumps(document))


@pytest.mark.parametrize("document", [
    {"v": "1", "device_id": "wr-1", "state": "online"}, {"v": 1, "device_id": "wr-1", "state": "online", "ts": 1},
    {"v": 1, "device_id": "wr-1", "state": "online", "battery_pct": "80"}, {"v": 1, "device_id": "wr-1", "state": "up"},
])
def test_the_status_schema_is_as_strict(document):
    with pytest.raises(jsonschema.ValidationError):
        validator("device-status.v1.schema.json").validate(document)
