"""Who is asking: the people and services Vigil knows, and the roles they hold.

A `Principal` is what every authenticated request carries, however it was authenticated (a
local account's session cookie, an OpenID Connect login, a service's client-credentials bearer
token). What each role may read and do is the access policy's (vigil.core.access); this module
only names who someone is. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """The roles of docs/security.md, from the patient's side to the hospital's."""

    PATIENT = "patient"  # sees only their own data
    CAREGIVER = "caregiver"  # a relative or carer: sees the patients they are linked to
    NURSE = "nurse"  # the patients of their wards
    PHYSICIAN = "physician"  # the patients of their wards
    WARD_ADMIN = "ward_admin"  # people, devices and settings of their wards
    SERVICE = "service"  # an integration (FHIR export, webhooks): client credentials, no person


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated person or service.

    `subject` is stable and unique across providers ("local:alice", "oidc:<sub>", "service:fhir");
    `name` is what the audit trail and the console show. `wards` scope clinicians and ward admins;
    `patients` scope patients (their own id) and caregivers (the patients they are linked to).
    `via` says how the caller was authenticated ("session", "oidc", "bearer").
    """

    subject: str
    name: str
    role: Role
    wards: frozenset[str] = field(default_factory=frozenset)
    patients: frozenset[str] = field(default_factory=frozenset)
    via: str = "session"
