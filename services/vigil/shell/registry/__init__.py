"""Device registry and patient profiles: who wears which device, and what matters about them."""

from vigil.shell.registry.roster import (
    CareTeamMember,
    ClinicalProfile,
    DeviceEnrolment,
    NotificationPreferences,
    PatientProfile,
    Roster,
)
from vigil.shell.registry.registry import Registry, load_roster

__all__ = [
    "CareTeamMember",
    "ClinicalProfile",
    "DeviceEnrolment",
    "NotificationPreferences",
    "PatientProfile",
    "Registry",
    "Roster",
    "load_roster",
]
