"""From a patient's profile to the recipients the core's planner understands."""

from __future__ import annotations

from vigil.core.notification import CONSOLE, QuietHours, Recipient
from vigil.shell.registry import PatientProfile
from vigil.shell.registry.roster import QuietHours as QuietHoursModel


def _quiet(model: QuietHoursModel | None) -> QuietHours | None:
    return None if model is None else QuietHours(model.start, model.end, model.timezone)


def _addresses(channels: list[str], *, phone: str | None, email: str | None, webhook: str | None,
               app_inbox: str) -> tuple[tuple[str, str], ...]:
    """Each preferred channel with its address; a channel without an address is skipped."""
    out: list[tuple[str, str]] = []
    for channel in dict.fromkeys(channels):
        address = {"app": app_inbox, "sms": phone, "email": email, "webhook": webhook}.get(channel)
        if address:
            out.append((channel, address))
    return tuple(out)


def recipients_for(patient_id: str, profile: PatientProfile | None, ward_webhook: str | None = None) -> list[Recipient]:
    """The console, the patient, their caregivers and their care team by escalation level.

    A patient without a profile (the demo, or a device enrolled on the fly) still reaches the
    console, and the patient app inbox."""
    console_channels: list[tuple[str, str]] = [("app", CONSOLE)]
    if ward_webhook:
        console_channels.append(("webhook", ward_webhook))
    recipients = [Recipient(CONSOLE, "console", tuple(console_channels))]
    patient_inbox = f"patient:{patient_id}"
    if profile is None:
        recipients.append(Recipient(patient_inbox, "patient", (("app", patient_inbox),)))
        return recipients
    prefs = profile.notifications
    recipients.append(Recipient(
        patient_inbox, "patient",
        _addresses(prefs.channels, phone=prefs.phone, email=prefs.email, webhook=None, app_inbox=patient_inbox),
        language=profile.language, quiet_hours=_quiet(prefs.quiet_hours),
    ))
    orders = sorted({m.escalation_order for m in profile.care_team if m.role != "caregiver"})
    for member in profile.care_team:
        member_id = f"team:{patient_id}:{member.stable_id}"
        channels = _addresses(member.channels, phone=member.phone, email=member.email, webhook=member.webhook_url,
                              app_inbox=f"team:{member.stable_id}")
        if member.role == "caregiver":
            recipients.append(Recipient(member_id, "caregiver", channels, member.language,
                                        quiet_hours=_quiet(member.quiet_hours)))
        else:
            recipients.append(Recipient(member_id, "clinician", channels, member.language,
                                        level=orders.index(member.escalation_order), quiet_hours=_quiet(member.quiet_hours)))
    return recipients
