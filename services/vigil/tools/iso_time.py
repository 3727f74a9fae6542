"""The command line's ISO 8601 times (`vigil audit export --since`, `vigil trends rebuild --since`)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone


def iso_time(value: str) -> float:
    """An ISO 8601 date or time as epoch seconds; without a zone, UTC. An argparse `type`."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {value!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
