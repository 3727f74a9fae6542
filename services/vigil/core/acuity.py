"""Who the ward looks at first: the order of the ward overview.

Sickest first, by what is known with most certainty first: an open incident's severity (a rule
fired and nobody has closed it), then the latest NEWS2, then the model's risk. An acknowledged
incident still ranks by its severity (someone is on it, but the patient is no better), after
an open one of the same severity. A patient Vigil cannot see (not monitored) ranks just below
an open critical incident: no news is not good news. Pure: no I/O.
"""

from __future__ import annotations

from vigil.core.events import SEVERITY_RANK

NOT_MONITORED_RANK = 3.5  # between high and critical: unseen is worse than a high alert someone is on


def acuity_key(severity: str | None, state: str | None, news2: float | None, risk: float | None,
               monitored: bool = True) -> tuple[float, int, float, float]:
    """A sort key, ascending = sickest first (sort with it, no `reverse`): ties keep the caller's order."""
    rank = float(SEVERITY_RANK.get(severity or "", 0))
    if not monitored:
        rank = max(rank, NOT_MONITORED_RANK)
    waiting = 1 if state == "open" else 0
    return (-rank, -waiting, -(news2 if news2 is not None else -1.0), -(risk if risk is not None else -1.0))
