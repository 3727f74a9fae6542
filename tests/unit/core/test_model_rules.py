"""Model scores go through the same alert policy as every rule, and the alert says why."""

from vigil.core.events import AlertCleared, AlertRaised
from vigil.core.model_rules import MODEL_RULE_KINDS, ModelScores, ModelThresholds
from vigil.core.patient import PatientMonitor
from vigil.core.reading import Reading

T0 = 1_800_000_000.0
WHY = ({"feature": "hr_z", "vital": "hr", "z": 4.2, "value": 118.0, "baseline": 74.0},)


class Ward:
    """One patient: a reading every 15 s, a model score every 60 s."""

    def __init__(self) -> None:
        self.monitor = PatientMonitor("pt-1")
        self.t, self.seq, self.events = T0, 0, []

    def run(self, seconds, anomaly=0.1, risk=0.05, contact=True):
        end = self.t + seconds
        while self.t < end:
            self.seq += 1
            hr = 72.0 + self.seq % 3 - 1
            self.monitor.observe(Reading("pt-1", "wr-1", self.t, self.seq, hr=hr, spo2=97.0, rr=15.0, temp=36.8,
                                         accel=0.02, contact=contact))
            if self.seq % 4 == 0:
                scores = ModelScores(self.t, anomaly, risk, "vigil-models-test", WHY)
                self.events.extend(self.monitor.apply_model_scores(scores, ModelThresholds()))
            self.t += 15.0

    def raised(self, kind):
        return [e.alert for e in self.events if isinstance(e, AlertRaised) and e.alert.kind == kind]


def test_monitor_has_a_rule_state_for_each_model_kind():
    monitor = PatientMonitor("pt-1")
    assert set(MODEL_RULE_KINDS) == {"anomaly", "rising_risk"} <= set(monitor.rules)


def test_a_short_burst_of_high_scores_does_not_fire():
    ward = Ward()
    ward.run(3600)
    ward.run(240, anomaly=2.0, risk=0.9)  # 4 minutes: under both persistence times... for anomaly
    ward.run(1800)
    assert ward.raised("anomaly") == []


def test_persistent_high_risk_fires_once_with_version_and_contributors():
    ward = Ward()
    ward.run(3600)
    ward.run(3600, risk=0.7)
    alerts = ward.raised("rising_risk")
    assert len(alerts) == 1, "one open alert per patient and kind"
    alert = alerts[0]
    assert alert.category == "clinical" and alert.severity == "medium"
    assert alert.model_version == "vigil-models-test"
    assert alert.contributors == [dict(WHY[0])]
    assert alert.values == {"risk_pct": 70}
    assert 300 <= alert.raised_t - alert.onset_t <= 420
    open_alert = ward.monitor.rules["rising_risk"].open
    assert open_alert is not None and open_alert.model_version == "vigil-models-test" and open_alert.contributors


def test_clears_only_after_the_clear_threshold_holds():
    ward = Ward()
    ward.run(3600)
    ward.run(1200, anomaly=1.5)
    assert len(ward.raised("anomaly")) == 1
    ward.run(3600, anomaly=0.8)  # between clear and trigger: hysteresis, stays open
    assert not [e for e in ward.events if isinstance(e, AlertCleared)]
    ward.run(1200, anomaly=0.2)
    cleared = [e for e in ward.events if isinstance(e, AlertCleared)]
    assert len(cleared) == 1 and cleared[0].alert.kind == "anomaly"


def test_untrusted_signal_neither_fires_nor_clears():
    ward = Ward()
    ward.run(3600)
    ward.run(3600, anomaly=3.0, contact=False)  # off skin: scores cannot be trusted
    assert ward.raised("anomaly") == []


def test_open_model_alert_freezes_the_baseline():
    ward = Ward()
    ward.run(3600)
    ward.run(1200, anomaly=1.5)
    frozen = ward.monitor.tracks["hr"].baseline_t
    ward.run(600, anomaly=1.5)
    assert ward.monitor.tracks["hr"].baseline_t == frozen
