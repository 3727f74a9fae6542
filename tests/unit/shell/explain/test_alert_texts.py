"""An alert's words come from one function, whoever shows them."""

from __future__ import annotations

import pytest

from vigil.core.events import Alert
from vigil.shell.desk.desk import AlertChange
from vigil.shell.desk.explanation_worker import template_texts
from vigil.shell.explain.explainer import Explainer
from vigil.shell.explain.facts import facts_from_alert
from vigil.shell.explain.samples import KINDS, sample_alert
from vigil.shell.explain.templates import alert_texts, clinician_summary, patient_message


def core_alert(kind: str) -> Alert:
    fields = Alert.__dataclass_fields__
    return Alert(**{k: v for k, v in sample_alert(kind).items() if k in fields}, baselines={"hr": 72.3})


@pytest.mark.parametrize("kind", KINDS)
def test_the_record_the_desk_and_the_explainer_say_the_same(kind):
    alert = core_alert(kind)
    # The alert's own record and announcement: English, naming the model that scored it.
    record = alert_texts(alert, name_model=True)
    assert (record.patient, record.clinician) == (patient_message(alert.as_dict()), clinician_summary(alert.as_dict()))
    assert ("Model " in record.clinician) == bool(alert.model_version)
    # Notifications: the recipient's language and the ward's emergency number, without the model.
    for language in ("en", "zh"):
        words = template_texts("112")(alert, language)
        assert words == alert_texts(alert, language=language, emergency_number="112")
        template = Explainer().template(facts_from_alert(alert, language=language, emergency_number="112"))
        assert (words.patient, words.clinician) == (template.patient_text, template.clinician_text)
    assert alert_texts(alert) == alert_texts(alert.as_dict())  # the core's alert or its dict: the same words


def test_an_alert_change_keeps_the_alert_as_it_was():
    alert = core_alert("fever")
    change = AlertChange.of("raised", alert, alert.raised_t)
    alert.severity, alert.values["temp_c"], alert.cleared_t = "high", 40.0, alert.raised_t + 60
    assert change.alert.severity == "medium" and change.alert.values["temp_c"] == 38.8 and change.alert.cleared_t is None
    assert change.key == (alert.alert_id, "raised", round(alert.raised_t, 3))
