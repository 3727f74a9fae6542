"""The alert policy: persistence before firing, hysteresis before clearing, one open alert per
patient and kind, severity that follows the patient, and suppression while the signal cannot be
trusted.

Escalation timers and reminders belong to the incident an alert joins (vigil.core.incident):
clinicians acknowledge incidents, so the clock that waits for an acknowledgement lives there.
"""

from __future__ import annotations

from dataclasses import replace

from vigil.core.events import (
    SEVERITY_RANK,
    Alert,
    AlertCleared,
    AlertRaised,
    AlertSeverityChanged,
    Category,
    Event,
    Severity,
    stable_alert_id,
)
from vigil.core.news2 import News2Score
from vigil.core.rules import ACTIVE, CLEAR, UNKNOWN, Finding, RuleSpec


class RuleState:
    """Where one rule stands for one patient: idle, pending, open (and clearing)."""

    __slots__ = (
        "pending_since", "pending_evidence", "pending_last",
        "open", "clear_since", "clear_evidence", "clear_last",
        "lower_since", "higher_since", "suppressed",
    )

    def __init__(self) -> None:
        self.pending_since: float | None = None
        self.pending_evidence = 0
        self.pending_last = -1.0
        self.open: Alert | None = None
        self.clear_since: float | None = None
        self.clear_evidence = 0
        self.clear_last = -1.0
        self.lower_since: float | None = None
        self.higher_since: float | None = None
        self.suppressed = 0

    def reset_pending(self) -> None:
        self.pending_since = None
        self.pending_evidence = 0

    def reset_clear(self) -> None:
        self.clear_since = None
        self.clear_evidence = 0


def raise_alert(
    state: RuleState,
    *,
    patient_id: str,
    kind: str,
    category: Category,
    finding: Finding,
    onset_t: float,
    t: float,
    news2: News2Score | None,
) -> AlertRaised:
    alert = Alert(
        alert_id=stable_alert_id(patient_id, kind, onset_t),
        patient_id=patient_id,
        kind=kind,
        category=category,
        severity=finding.severity,
        rule=finding.rule,
        values=dict(finding.values),
        onset_t=onset_t,
        raised_t=t,
        news2=None if news2 is None else news2.as_dict(),
    )
    state.open = alert
    state.reset_pending()
    state.reset_clear()
    state.lower_since = None
    return AlertRaised(replace(alert))


def step_rule(
    spec: RuleSpec,
    state: RuleState,
    outcome: tuple[int, float, Finding | None],
    t: float,
    patient_id: str,
    news2: News2Score | None,
) -> Event | None:
    """Advance one rule's state by one evaluation; return the event it caused, if any."""
    code, evidence_t, finding = outcome
    alert = state.open
    if alert is None:
        if code != ACTIVE:
            if code == UNKNOWN and state.pending_since is not None:
                state.suppressed += 1
            if state.pending_since is not None:
                state.reset_pending()
            return None
        assert finding is not None
        if state.pending_since is None:
            state.pending_since = evidence_t
            state.pending_evidence = 1
            state.pending_last = evidence_t
        elif evidence_t != state.pending_last:
            state.pending_evidence += 1
            state.pending_last = evidence_t
        if t - state.pending_since >= spec.persist_s and state.pending_evidence >= spec.min_evidence:
            return raise_alert(
                state, patient_id=patient_id, kind=spec.kind, category=spec.category, finding=finding,
                onset_t=state.pending_since, t=t, news2=news2,
            )
        return None

    if code == ACTIVE:
        assert finding is not None
        state.reset_clear()
        rank_now, rank_open = SEVERITY_RANK[finding.severity], SEVERITY_RANK[alert.severity]
        if rank_now > rank_open:
            # Step up once the higher severity has persisted as long as firing would take.
            state.lower_since = None
            if state.higher_since is None:
                state.higher_since = t
            if t - state.higher_since >= spec.persist_s:
                return _change_severity(state, alert, finding.severity, t)
            return None
        state.higher_since = None
        if rank_now < rank_open:
            # Step down only after the lower severity has held as long as a clear would take.
            if state.lower_since is None:
                state.lower_since = t
            elif t - state.lower_since >= max(spec.clear_s, 1.0):
                return _change_severity(state, alert, finding.severity, t)
        else:
            state.lower_since = None
        return None
    if code == CLEAR:
        if state.clear_since is None:
            state.clear_since = t
            state.clear_evidence = 1
            state.clear_last = evidence_t
        elif evidence_t != state.clear_last:
            state.clear_evidence += 1
            state.clear_last = evidence_t
        if t - state.clear_since >= spec.clear_s and state.clear_evidence >= spec.clear_min_evidence:
            return clear_alert(state, t)
        return None
    # In the hysteresis band, or unknown: an open alert neither clears nor changes.
    state.reset_clear()
    return None


def clear_alert(state: RuleState, t: float) -> AlertCleared:
    alert = state.open
    assert alert is not None
    alert.cleared_t = t
    state.open = None
    state.reset_clear()
    state.reset_pending()
    state.lower_since = None
    return AlertCleared(replace(alert), t)


def _change_severity(state: RuleState, alert: Alert, severity: Severity, t: float) -> AlertSeverityChanged:
    previous = alert.severity
    alert.severity = severity
    state.lower_since = state.higher_since = None
    return AlertSeverityChanged(replace(alert), previous, t)

