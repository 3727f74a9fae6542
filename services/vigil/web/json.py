"""JSON for the HTTP API: rows carry datetimes and other values json cannot encode by itself."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
