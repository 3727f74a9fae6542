"""Device registry and patient profiles: who wears which device, and what matters about them."""

from vigil.registry.profile import (
    CareTeamMember,
    ClinicalProfile,
    DeviceEnrolment,
    NotificationPreferences,
    PatientProfile,
    Roster,
)
from vigil.registry.registry import Registry, load_roster

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
