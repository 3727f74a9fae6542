"""What a clinician found when closing an incident: the outcome label.

An incident resolved from the ward workspace carries one of these, with a free note (the
incident's `resolution`). They are the labels the models will learn from later (`vigil outcomes
export`), so the set is small and fixed: a free-text label would need cleaning before it could
teach anything. Pure: no I/O.
"""

from __future__ import annotations

TRUE_DETERIORATION = "true_deterioration"
FALSE_ALARM = "false_alarm"
ARTEFACT = "artefact"
OTHER = "other"
OUTCOMES = (TRUE_DETERIORATION, FALSE_ALARM, ARTEFACT, OTHER)

# How each label reads on the ward's screens.
OUTCOME_WORDS = {
    TRUE_DETERIORATION: "true deterioration",
    FALSE_ALARM: "false alarm",
    ARTEFACT: "artefact (device or signal)",
    OTHER: "other (see note)",
}


def check_outcome(outcome: str | None) -> str | None:
    """The outcome, if it is one of OUTCOMES (None: none given); else ValueError naming the choices."""
    if outcome is None or outcome in OUTCOMES:
        return outcome
    raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
