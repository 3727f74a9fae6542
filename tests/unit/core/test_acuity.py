"""The ward overview's order: open incident severity, then NEWS2, then risk; unseen patients high."""

from vigil.core.acuity import acuity_key
from vigil.core.outcomes import OUTCOMES, check_outcome

import pytest


def test_sickest_first_by_severity_then_news2_then_risk():
    patients = {
        "calm": acuity_key(None, None, 0, 0.05),
        "news2 high": acuity_key(None, None, 7, 0.1),
        "risky": acuity_key(None, None, 7, 0.8),
        "high acked": acuity_key("high", "acknowledged", 3, 0.2),
        "high open": acuity_key("high", "open", 3, 0.2),
        "critical": acuity_key("critical", "open", 1, 0.1),
        "unseen": acuity_key(None, None, None, None, monitored=False),
        "never scored": acuity_key(None, None, None, None),
    }
    assert sorted(patients, key=patients.get) == ["critical", "unseen", "high open", "high acked", "risky",
                                                  "news2 high", "calm", "never scored"]


def test_outcome_labels_are_a_fixed_set():
    assert OUTCOMES == ("true_deterioration", "false_alarm", "artefact", "other")
    assert check_outcome(None) is None and check_outcome("artefact") == "artefact"
    with pytest.raises(ValueError, match="one of"):
        check_outcome("probably fine")
