"""Export the device contract as JSON Schema (for device makers' own validators)."""

from __future__ import annotations

import json
from pathlib import Path

from vigil.shell.contract.device import DeviceStatus, VitalsBatch


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in (("vitals-batch.v1", VitalsBatch), ("device-status.v1", DeviceStatus)):
        path = directory / f"{name}.schema.json"
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
