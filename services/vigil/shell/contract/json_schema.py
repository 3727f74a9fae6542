"""Export the device contract as JSON Schema (for device makers' own validators).

The schema says what JSON Schema can: types (an integer is not a number with a fraction, a
boolean is not a number), ranges, patterns, unknown fields refused, `sbp_mmhg` and `dbp_mmhg`
together (`dependentRequired`). What it cannot say is checked by the models only and written in
docs/device-protocol.md: dbp below sbp, and `1.0` refused where an integer belongs (JSON Schema
counts 1.0 as an integer).
"""

from __future__ import annotations

import json
from pathlib import Path

from vigil.shell.contract.device import DeviceStatus, VitalsBatch

MODELS = (("vitals-batch.v1", VitalsBatch), ("device-status.v1", DeviceStatus))


def schema_texts() -> dict[str, str]:
    """Each schema file's name and text, exactly as `write_schemas` writes it."""
    texts = {}
    for name, model in MODELS:
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        texts[f"{name}.schema.json"] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return texts


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in schema_texts().items():
        path = directory / filename
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
