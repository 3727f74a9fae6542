"""A patient's day at a glance: the latest readings with whether each is in their usual range, the
monitor's state (battery, last reading, not sending and what to do), and the alerts they may answer.

Words are the app's (English and Chinese, in the browser); this gives the facts they need.
"""

from __future__ import annotations

from typing import Any

from vigil.core.incident import Incident
from vigil.core.usual_range import in_usual_range
from vigil.shell.registry import Registry
from vigil.shell.stores.patient_app_store import PatientAppStore
from vigil.shell.trends.model import PatientLatest, TrendStore

SHOWN_VITALS = ("spo2", "hr", "rr", "temp", "sbp", "dbp")
# Technical alerts that mean the monitor is not sending usable readings, and what the patient can do.
NOT_SENDING = {"device_offline": "charge_and_wear", "not_monitored": "call_ward", "poor_signal": "refit"}
# Coverage causes the patient cannot fix themself (docs/coverage.md): the ward is already told.
WARD_FIXES = frozenset({"rejected", "never_seen", "clock"})
STALE_AFTER_S = 15 * 60.0


def readings(latest: PatientLatest, registry: Registry, patient_id: str) -> list[dict[str, Any]]:
    context = registry.context_for(patient_id)
    out = []
    for vital in SHOWN_VITALS:
        value = latest.vitals.get(vital)
        if value is not None:
            out.append({"vital": vital, "value": round(value.value, 1), "t": value.t,
                        "usual": in_usual_range(vital, value.value, context)})
    return out


def monitor_state(incidents: list[Incident], devices: list[dict[str, Any]], last_t: float | None,
                  now: float) -> dict[str, Any]:
    """Sending or not, and why, with what the patient can do about it."""
    problem = None
    for incident in incidents:
        for member in incident.members.values():
            if member.active and member.kind in NOT_SENDING:
                problem = member.kind
    battery = next((d["battery"] for d in devices if d.get("battery") is not None), None)
    offline = any(d["state"] == "offline" for d in devices[:1])
    stale = last_t is None or now - last_t > STALE_AFTER_S
    sending = problem is None and not offline and not stale
    advice = None
    if not sending:
        advice = NOT_SENDING.get(problem or "device_offline", "charge_and_wear")
        if battery is not None and battery < 15:
            advice = "charge_and_wear"
    return {"sending": sending, "battery": battery, "last_reading_t": last_t, "problem": problem,
            "advice": advice, "devices": [d["device_id"] for d in devices]}


def open_alerts(incidents: list[Incident]) -> list[dict[str, Any]]:
    """The patient's unresolved incidents they may answer ("I'm OK" / "I need help")."""
    return [{"incident_id": i.incident_id, "category": i.category, "severity": i.severity, "state": i.state,
             "opened_t": i.opened_t, "kinds": sorted({m.kind for m in i.members.values() if m.active})}
            for i in incidents]


def today(patient_id: str, registry: Registry, trends: TrendStore | None, store: PatientAppStore,
          incidents: list[Incident], now: float) -> dict[str, Any]:
    latest = trends.latest([patient_id])[patient_id] if trends is not None else PatientLatest(patient_id)
    profile = registry.profile(patient_id)
    device_ids = [d.device_id for d in profile.devices] if profile is not None else []
    devices = store.device_states(device_ids)
    if not any(d.get("battery") is not None for d in devices):
        battery = store.latest_battery(patient_id, device_ids)
        if battery is not None:
            devices = [*devices, {"device_id": device_ids[0], "state": "reading", "battery": battery}]
    return {"patient_id": patient_id, "name": (profile.display_name if profile else None) or patient_id,
            "language": profile.language if profile else "en", "now": now,
            "readings": readings(latest, registry, patient_id),
            "monitor": monitor_state(incidents, devices, latest.last_t, now),
            "alerts": open_alerts(incidents)}
