"""Template explanations: offline, deterministic, and the fallback for every other explainer.

Patient messages use short sentences and everyday words, quote the reading that caused the
alert, say what to do now and when to call emergency services. They never name a diagnosis
and never mention medicines. Clinician summaries give the values, baselines, trends, the rule,
NEWS2 and its breakdown, and the model's risk with its top contributors.

Every number printed comes from the facts, formatted with the facts' own rounding, so the
checks in `checks.py` accept every template text (a test holds every kind to that).
English and Simplified Chinese; the phrase tables are side by side so a new kind is added to
both at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vigil.core.events import Alert
from vigil.shell.explain.facts import VALUE_KEYS, VITAL_UNITS, AlertFacts, facts_from_alert

# The opening sentence for each alert kind: what Vigil saw, in everyday words.
PATIENT_TEXT: dict[str, str] = {
    "hypoxaemia": "Your oxygen level has been lower than usual.",
    "tachycardia": "Your heart has been beating faster than usual while you rest.",
    "bradycardia": "Your heart has been beating slower than usual.",
    "hypertensive_crisis": "Your blood pressure has been very high.",
    "hypotension": "Your blood pressure has been low.",
    "fever": "Your temperature has been higher than usual.",
    "hypothermia": "Your temperature has been lower than usual.",
    "tachypnoea": "You have been breathing faster than usual while resting.",
    "bradypnoea": "You have been breathing more slowly than usual.",
    "news2": "Several of your readings have changed together.",
    "anomaly": "Some of your readings look different from your usual pattern.",
    "rising_risk": "Your readings suggest your health may be changing.",
    "low_battery": "Your monitor's battery is low.",
    "device_offline": "We have not had readings from your monitor for a while.",
    "poor_signal": "Your monitor is not getting clear readings.",
    "not_monitored": "We cannot use the readings from your monitor at the moment.",
}
PATIENT_TEXT_ZH: dict[str, str] = {
    "hypoxaemia": "您的血氧比平时低。",
    "tachycardia": "您在休息时心跳比平时快。",
    "bradycardia": "您的心跳比平时慢。",
    "hypertensive_crisis": "您的血压很高。",
    "hypotension": "您的血压偏低。",
    "fever": "您的体温比平时高。",
    "hypothermia": "您的体温比平时低。",
    "tachypnoea": "您在休息时呼吸比平时快。",
    "bradypnoea": "您的呼吸比平时慢。",
    "news2": "您的几项读数同时发生了变化。",
    "anomaly": "您的一些读数与平时不同。",
    "rising_risk": "您的读数显示，您的健康状况可能正在变化。",
    "low_battery": "您的监测设备电量低。",
    "device_offline": "我们有一段时间没有收到您监测设备的读数了。",
    "poor_signal": "您的监测设备读数不清楚。",
    "not_monitored": "我们目前无法使用您监测设备的读数。",
}
# What to do now, by kind (clinical kinds not listed get the default).
ACTION: dict[str, dict[str, str]] = {
    "en": {
        "hypoxaemia": "Please sit upright and rest.", "tachycardia": "Please sit down and rest.",
        "bradycardia": "Please sit or lie down and rest.", "hypertensive_crisis": "Please sit quietly and rest.",
        "hypotension": "Please sit or lie down, and stand up slowly.", "fever": "Please rest and drink fluids.",
        "hypothermia": "Please get warm and rest.", "tachypnoea": "Please sit upright and rest.",
        "bradypnoea": "Please sit upright and keep your phone near you.",
        "low_battery": "Please charge it soon so we can keep watching over you.",
        "device_offline": "Please check it is on, charged and worn.",
        "poor_signal": "Please check it sits snugly on your wrist.",
        "not_monitored": "Please check it is on and worn; your care team can see the problem too.",
        "": "Please rest and keep your monitor on.",
    },
    "zh": {
        "hypoxaemia": "请坐直休息。", "tachycardia": "请坐下休息。", "bradycardia": "请坐下或躺下休息。",
        "hypertensive_crisis": "请安静地坐着休息。", "hypotension": "请坐下或躺下，起身时要慢。",
        "fever": "请休息，多喝水。", "hypothermia": "请注意保暖，好好休息。", "tachypnoea": "请坐直休息。",
        "bradypnoea": "请坐直，并把电话放在身边。",
        "low_battery": "请尽快充电，以便我们继续照看您。",
        "device_offline": "请检查设备是否开机、有电并已佩戴。",
        "poor_signal": "请检查设备是否贴紧手腕。",
        "not_monitored": "请检查设备是否开机并已佩戴；您的护理团队也能看到这个问题。",
        "": "请休息，并继续佩戴监测设备。",
    },
}
FOLLOW_UP: dict[str, dict[str, str]] = {
    "en": {"critical": "Your care team has been told and will contact you very soon.",
           "high": "Your care team has been told and will contact you soon.",
           "medium": "Your care team has been told and will check on you.", "low": ""},
    "zh": {"critical": "您的护理团队已收到通知，会很快联系您。", "high": "您的护理团队已收到通知，会尽快联系您。",
           "medium": "您的护理团队已收到通知，会查看您的情况。", "low": ""},
}
EMERGENCY_LINE = {
    "en": "If you feel very unwell, have chest pain or struggle to breathe, call {number} now.",
    "zh": "如果您感到非常不适、胸痛或呼吸困难，请立即拨打{number}。",
}
NOT_A_DOCTOR = {"en": "Vigil helps your care team. It does not replace them.",
                "zh": "Vigil协助您的护理团队，但不能取代他们。"}
DEVICE_SAFETY = {"en": "If you feel unwell, contact your care team as you normally would.",
                 "zh": "如果您感到不适，请像平时一样联系您的护理团队。"}
# Everyday names and units of the vitals, for patients.
PATIENT_VITAL = {
    "en": {"hr": ("heart rate", " beats a minute"), "spo2": ("oxygen level", "%"), "rr": ("breathing rate", " breaths a minute"),
           "temp": ("temperature", "°C"), "sbp": ("blood pressure", " mmHg"), "dbp": ("lower blood pressure", " mmHg")},
    "zh": {"hr": ("心率", "次/分"), "spo2": ("血氧", "%"), "rr": ("呼吸", "次/分"), "temp": ("体温", "°C"),
           "sbp": ("血压", " mmHg"), "dbp": ("舒张压", " mmHg")},
}
# Clinical shorthand for the clinician summary.
VALUE_LABELS: dict[str, dict[str, str]] = {
    "en": {"hr_bpm": "HR", "spo2_pct": "SpO2", "rr_per_min": "RR", "temp_c": "Temp", "sbp_mmhg": "SBP", "dbp_mmhg": "DBP",
           "battery_pct": "Battery", "hr_variability_bpm": "HR variability", "activity_g": "Activity",
           "silent_for_min": "Silent for", "untrusted_for_min": "Untrusted for", "risk_pct": "Deterioration risk",
           "anomaly_score": "Anomaly score"},
    "zh": {"hr_bpm": "心率", "spo2_pct": "SpO2", "rr_per_min": "呼吸频率", "temp_c": "体温", "sbp_mmhg": "收缩压",
           "dbp_mmhg": "舒张压", "battery_pct": "电量", "hr_variability_bpm": "心率变异", "activity_g": "活动量",
           "silent_for_min": "无数据时长", "untrusted_for_min": "信号不可信时长", "risk_pct": "恶化风险",
           "anomaly_score": "异常评分"},
}
VITAL_LABELS = {
    "en": {"hr": "HR", "spo2": "SpO2", "rr": "RR", "temp": "Temp", "sbp": "SBP", "dbp": "DBP",
           "air_or_oxygen": "air/O2", "consciousness": "ACVPU"},
    "zh": {"hr": "心率", "spo2": "SpO2", "rr": "呼吸", "temp": "体温", "sbp": "收缩压", "dbp": "舒张压",
           "air_or_oxygen": "吸氧", "consciousness": "意识"},
}
SEVERITY = {"en": {"critical": "CRITICAL", "high": "HIGH", "medium": "MEDIUM", "low": "LOW"},
            "zh": {"critical": "危急", "high": "高", "medium": "中", "low": "低"}}
KIND_ZH = {
    "hypoxaemia": "低氧", "tachycardia": "心动过速", "bradycardia": "心动过缓", "hypertensive_crisis": "血压极高",
    "hypotension": "低血压", "fever": "体温升高", "hypothermia": "体温过低", "tachypnoea": "呼吸过速",
    "bradypnoea": "呼吸过缓", "news2": "NEWS2升高", "anomaly": "模式异常", "rising_risk": "恶化风险上升",
    "low_battery": "电量低", "device_offline": "设备离线", "poor_signal": "信号差",
    "not_monitored": "未在监测",
}
BAND_ZH = {"high": "高", "medium": "中", "low-medium": "低-中", "low": "低"}
# The core writes its rules in English; these fragments cover every rule it writes today.
# Anything not covered stays in English, which a clinician still reads.
RULE_ZH: tuple[tuple[str, str], ...] = (
    ("fast irregular rhythm: ", "快速不规则心律："), ("systolic blood pressure", "收缩压"), ("blood pressure", "血压"),
    ("heart rate", "心率"), ("respiratory rate", "呼吸频率"), ("temperature", "体温"), ("device battery", "设备电量"),
    ("deterioration risk", "恶化风险"), ("on repeat cuff readings", "（重复袖带测量）"), ("at any activity", "任何活动下"),
    ("at rest", "静息时"), ("NEWS2 aggregate", "NEWS2总分"), ("not observed", "未观察"), ("partial", "部分"),
    ("target", "目标"), ("scale", "量表"), ("pattern unusual for this patient", "该患者模式异常"),
    ("anomaly score", "异常评分"), ("the 99.9th centile of their stable periods", "其平稳期的第99.9百分位"),
    ("a clinical event within the hour", "一小时内发生临床事件"), ("no readings for more than", "无读数超过"),
    ("sensor readings untrusted (off skin, stuck or moving) for", "传感器读数不可信（脱离皮肤、卡住或移动）持续"),
    ("every reading from the monitor is refused: ", "监测设备的每个读数都被拒绝："),
    ("its data is not in the expected format", "数据格式不符"), ("its values are impossible", "数值不可能"),
    ("its clock is wrong", "时钟错误"), ("its sample numbers are out of order", "样本编号顺序错误"),
    ("Vigil failed to read it", "系统读取失败"), ("the monitor said it went offline", "监测设备报告已离线"),
    ("enrolled, but no reading has ever arrived from the monitor", "已登记，但从未收到监测设备的读数"),
    ("the monitor's readings cannot be trusted (off the skin, stuck or moving)", "监测设备读数不可信（脱离皮肤、卡住或移动）"),
    ("the monitor sends readings, but not ", "监测设备有读数，但没有"),
    ("the monitor's clock is wrong by ", "监测设备时钟偏差"), ("more than 5", "超过5"),
    (" min: its readings cannot be used", "分钟：其读数无法使用"),
    (" or ", " 或 "), ("(or ", "（或 "),
)


def fmt(value: float | int, decimals: int) -> str:
    """A number exactly as the facts hold it: 39.0 stays 39.0 for a temperature, 87 stays 87."""
    return f"{value:.{decimals}f}" if decimals else str(int(value))


def _vital_fmt(vital: str, value: float | int) -> str:
    return fmt(value, VITAL_UNITS[vital][1])


def _reading_sentence(facts: AlertFacts, lang: str) -> str:
    """The reading that caused the alert, and the patient's usual value when known."""
    f = facts
    m = {v.name: v for v in f.values}
    en = lang == "en"
    if f.kind in ("hypertensive_crisis", "hypotension") and "sbp_mmhg" in m:
        sbp = fmt(m["sbp_mmhg"].value, 0)
        dbp = m.get("dbp_mmhg")
        pair = f"{sbp} over {fmt(dbp.value, 0)} mmHg" if dbp and dbp.value else f"{sbp} mmHg"
        if not en:
            pair = f"{sbp}/{fmt(dbp.value, 0)} mmHg" if dbp and dbp.value else f"{sbp} mmHg"
        return f"It was {pair}." if en else f"读数为{pair}。"
    if f.kind == "low_battery" and "battery_pct" in m:
        return f"It is at {fmt(m['battery_pct'].value, 0)}%." if en else f"目前电量为{fmt(m['battery_pct'].value, 0)}%。"
    if f.kind == "device_offline" and "silent_for_min" in m:
        minutes = fmt(m["silent_for_min"].value, 0)
        return f"The last one came {minutes} minutes ago." if en else f"最后一次读数是在{minutes}分钟前。"
    vital = next((v.vital for v in f.values if v.vital in ("hr", "spo2", "rr", "temp")), None)
    if vital is not None and f.kind not in ("anomaly", "rising_risk", "news2"):
        value = next(v.value for v in f.values if v.vital == vital)
    elif f.contributors and f.kind in ("anomaly", "rising_risk"):
        c = f.contributors[0]
        vital, value = c.vital, c.value
    else:
        return ""
    label, unit = PATIENT_VITAL[lang][vital]
    reading = _vital_fmt(vital, value) + unit
    if f.kind in ("anomaly", "rising_risk"):  # the opening did not say which reading: name it
        text = f"Your {label} was {reading}." if en else f"您的{label}为{reading}。"
    else:
        text = f"It was {reading}." if en else f"读数为{reading}。"
    usual = f.baselines.get(vital)
    if usual is not None:
        text += f" It is usually about {_vital_fmt(vital, usual)}{unit}." if en else f"您平时约为{_vital_fmt(vital, usual)}{unit}。"
    return text


def patient_what_changed(facts: AlertFacts) -> str:
    """The template's account of what changed: the opening and the reading that caused it."""
    lang = facts.language
    en = lang == "en"
    opening = (PATIENT_TEXT if en else PATIENT_TEXT_ZH).get(facts.kind, "Some of your readings have changed." if en else "您的一些读数发生了变化。")
    return (" " if en else "").join(p for p in (opening, _reading_sentence(facts, lang)) if p)


def patient_frame(facts: AlertFacts) -> str:
    """What the patient must do, always Vigil's words: the action, who has been told (by
    severity), the emergency line (clinical alerts) or device safety (technical), and that Vigil
    does not replace the care team. A model's text is only ever placed in front of this."""
    lang = facts.language
    parts = [ACTION[lang].get(facts.kind, ACTION[lang][""])]
    if facts.category == "clinical":
        parts.append(FOLLOW_UP[lang].get(facts.severity, ""))
        parts.append(EMERGENCY_LINE[lang].format(number=facts.emergency_number))
        parts.append(NOT_A_DOCTOR[lang])
    else:
        parts.append(DEVICE_SAFETY[lang])
    return (" " if lang == "en" else "").join(p for p in parts if p)


def compose_patient(what_changed: str, facts: AlertFacts) -> str:
    """The delivered patient text: what changed (the model's or the template's), then Vigil's frame."""
    return (" " if facts.language == "en" else "").join(p for p in (what_changed.strip(), patient_frame(facts)) if p)


def patient_text(facts: AlertFacts) -> str:
    """A calm, plain message for the patient (reading grade about 5 in English)."""
    return compose_patient(patient_what_changed(facts), facts)


def _rule_text(rule: str, lang: str) -> str:
    if lang == "en":
        return rule
    for english, chinese in RULE_ZH:
        rule = rule.replace(english, chinese)
    return rule


def clinician_text(facts: AlertFacts) -> str:
    """A concise summary: values with baselines and trends, the rule, NEWS2, the model's view."""
    lang = facts.language
    en = lang == "en"
    labels, vlabels = VALUE_LABELS[lang], VITAL_LABELS[lang]
    shown = []
    for m in facts.values:
        if m.name in ("risk_pct", "anomaly_score"):
            continue  # in the model line
        decimals = VALUE_KEYS[m.name][2]
        text = f"{labels.get(m.name, m.name)} {fmt(m.value, decimals)}{(' ' + m.unit) if m.unit else ''}"
        extra = []
        if m.vital and m.vital in facts.baselines:
            extra.append(("baseline " if en else "基线 ") + f"{_vital_fmt(m.vital, facts.baselines[m.vital])}")
        if m.vital and m.vital in facts.trends_per_hour:
            extra.append(("trend " if en else "趋势 ") + f"{facts.trends_per_hour[m.vital]:+.1f}/h")
        if extra:
            text += f" ({', '.join(extra)})" if en else f"（{'，'.join(extra)}）"
        shown.append(text)
    if facts.flags.get("irregular"):
        shown.append("irregular rhythm" if en else "心律不规则")
    head = f"{SEVERITY[lang][facts.severity]} {facts.kind if en else KIND_ZH.get(facts.kind, facts.kind)}"
    sep, stop = (", ", ".") if en else ("，", "。")
    if en:
        lines = [f"{head}: {sep.join(shown)}{stop}" if shown else f"{head}{stop}"]
    else:
        lines = [f"【{head}】{sep.join(shown)}{stop}" if shown else f"【{head}】"]
    lines.append(f"Rule: {facts.rule}." if en else f"规则：{_rule_text(facts.rule, lang)}。")
    quoted = {m.vital for m in facts.values if m.vital}
    other_trends = [f"{vlabels.get(v, v)} {d:+.1f}/h" for v, d in facts.trends_per_hour.items() if v not in quoted]
    if other_trends:
        lines.append(("Trends: " if en else "趋势：") + sep.join(other_trends) + stop)
    if facts.news2 is not None:
        n = facts.news2
        breakdown = sep.join(f"{vlabels.get(k, k)} {v}" for k, v in n.parameters.items())
        band = n.band if en else BAND_ZH.get(n.band, n.band)
        missing = ""
        if n.missing:
            names = sep.join(vlabels.get(k, k) for k in n.missing)
            missing = f"; not observed: {names}" if en else f"；未观察：{names}"
        lines.append(f"NEWS2 {n.score} ({band}): {breakdown}{missing}." if en else f"NEWS2 {n.score}（{band}）：{breakdown}{missing}。")
    model = []
    if facts.risk_pct is not None:
        model.append(f"risk {facts.risk_pct}%" if en else f"风险 {facts.risk_pct}%")
    if facts.anomaly_score is not None:
        model.append(f"anomaly score {fmt(facts.anomaly_score, 2)}" if en else f"异常评分 {fmt(facts.anomaly_score, 2)}")
    if model:
        lines.append(("Model: " if en else "模型：") + ("; " if en else "；").join(model) + stop)
    drivers = [f"{vlabels[c.vital]} {_vital_fmt(c.vital, c.value)} vs {_vital_fmt(c.vital, c.baseline)} (z {c.z:+.1f})"
               for c in facts.contributors]
    if drivers:  # the model's top contributing features, largest deviation first
        lines.append(("Drivers: " if en else "主要因素：") + sep.join(drivers) + stop)
    context = []
    if facts.on_oxygen is not None:
        context.append(("on O2" if facts.on_oxygen else "on air") if en else ("吸氧中" if facts.on_oxygen else "未吸氧"))
    if facts.spo2_scale is not None:
        context.append(f"SpO2 scale {facts.spo2_scale}" if en else f"SpO2 量表 {facts.spo2_scale}")
    if context:
        joined = sep.join(context)
        lines.append(joined[0].upper() + joined[1:] + stop)
    return (" " if en else "").join(lines)


def compose_clinician(summary: str, facts: AlertFacts) -> str:
    """The delivered clinician text: Vigil's data and severity first, the model's summary after."""
    label = "Summary: " if facts.language == "en" else "摘要："
    return clinician_text(facts) + (" " if facts.language == "en" else "") + label + summary.strip()


# -- an alert's words: the one producer ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AlertTexts:
    """An alert's words: the calm message for the patient and the summary for clinicians."""

    patient: str
    clinician: str


def alert_texts(alert: Alert | Mapping[str, Any], *, language: str = "en", emergency_number: str = "999",
                name_model: bool = False) -> AlertTexts:
    """The template words of an alert, for every place that shows them: the alert's own record
    and announcement (English, naming the model that scored it: `name_model`) and each
    notification (in the recipient's language). Deterministic and fast: safe on the alert's path."""
    facts = facts_from_alert(alert, language=language, emergency_number=emergency_number)
    clinician = clinician_text(facts)
    model_version = alert.model_version if isinstance(alert, Alert) else alert.get("model_version")
    if name_model and model_version:
        # Which model scored it matters in the record; it is not a fact the explainer needs.
        clinician += f" Model {model_version}."
    return AlertTexts(patient_text(facts), clinician)


def patient_message(alert: Mapping[str, Any]) -> str:
    """The patient's words of an alert (`Alert.as_dict()`), in English."""
    return alert_texts(alert).patient


def clinician_summary(alert: Mapping[str, Any], baselines: Mapping[str, float] | None = None) -> str:
    """The clinicians' words of an alert, naming its model; `baselines` by vital (hr) or value key (hr_bpm)."""
    if baselines:
        by_vital = {VALUE_KEYS[k][0] if k in VALUE_KEYS and VALUE_KEYS[k][0] else k: v for k, v in baselines.items()}
        alert = {**alert, "baselines": {**by_vital, **dict(alert.get("baselines") or {})}}
    return alert_texts(alert, name_model=True).clinician
