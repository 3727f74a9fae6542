"""The words of the worker consumer's watch on records around rebalances (issue 12).

A record that aiokafka hands to Faust (its fetch position moves past it) but that Faust then
does not deliver to the agent is lost unless a later seek fetches it again. Faust drops records
in three places without saying so above its `dev` log level: below its read offset
(`Consumer._drain_messages`, "DROPPED MESSAGE ROFF"), and in `Consumer.getmany` when the flow
stops or the generation changes mid-batch, or when the partition is no longer active. The worker
consumer (worker_consumer.py) logs each with partition and offsets on the logger here, and
seeks, revocations, assignments and commits at INFO, so that a loss can be traced to its step.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("vigil.processor.kafka")


def ranges(offsets: list[int]) -> str:
    """'3-7,9' for [3, 4, 5, 6, 7, 9]."""
    out, start, prev = [], None, None
    for offset in sorted(offsets):
        if start is None:
            start = prev = offset
        elif offset == prev + 1:
            prev = offset
        else:
            out.append(f"{start}-{prev}" if start != prev else f"{start}")
            start = prev = offset
    if start is not None:
        out.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ",".join(out)


def tp_name(tp: Any) -> str:
    return f"{tp.topic}[{tp.partition}]"
