"""The access policy: what each role may do, and whose data it may see. One table, in code.

docs/security.md ("People") shows the same table; a test checks that the two agree. Two
questions, asked separately:

- `permits(principal, permission)`: may this role do this kind of thing at all?
- `sees(principal, patient_id, ward)`: is this patient within the caller's scope? A patient sees
  only themself, a caregiver the patients they are linked to, nurses, physicians and ward admins
  the patients of their wards, a service what its grant names (wards, patients, or every ward
  with the wildcard ward "*").

`allowed(...)` asks both. Inboxes of the push streams: `may_read_inbox`. Pure: no I/O.
"""

from __future__ import annotations

from enum import StrEnum

from vigil.core.identity import Principal, Role

ALL_WARDS = "*"  # a service grant covering every ward (the legacy VIGIL_API_TOKEN)


class Permission(StrEnum):
    """What a caller may do; the patient scope is checked separately (`sees`)."""

    READ_VITALS = "read_vitals"  # readings and alerts of a patient
    READ_INCIDENTS = "read_incidents"  # incidents, their audit trail and notifications
    ACT_ON_INCIDENT = "act_on_incident"  # acknowledge, resolve
    READ_INBOX = "read_inbox"  # one's own push inbox (SSE / polling)
    READ_DEAD_LETTERS = "read_dead_letters"  # raw device payloads that were refused
    READ_AUDIT = "read_audit"  # the access audit
    MANAGE_USERS = "manage_users"  # local accounts of one's wards
    MANAGE_DEVICES = "manage_devices"  # device enrolment and credentials
    ISSUE_ENROLMENT = "issue_enrolment"  # one-time codes binding a patient's phone
    APPROVE_PATIENT_TEXTS = "approve_patient_texts"  # (a later issue)
    SERVICE_EXPORT = "service_export"  # bulk export for an integration (FHIR)


class Scope(StrEnum):
    """Whose data a role sees."""

    SELF = "self"  # the patient's own id (Principal.patients)
    LINKED = "linked"  # the patients a caregiver is linked to (Principal.patients)
    WARDS = "wards"  # the patients of the caller's wards (Principal.wards)
    GRANT = "grant"  # a service: the wards and patients of its grant ("*": every ward)


P = Permission
POLICY: dict[Role, frozenset[Permission]] = {
    Role.PATIENT: frozenset({P.READ_VITALS, P.READ_INCIDENTS, P.READ_INBOX}),
    Role.CAREGIVER: frozenset({P.READ_VITALS, P.READ_INCIDENTS, P.READ_INBOX}),
    Role.NURSE: frozenset({P.READ_VITALS, P.READ_INCIDENTS, P.ACT_ON_INCIDENT, P.READ_INBOX, P.ISSUE_ENROLMENT}),
    Role.PHYSICIAN: frozenset({P.READ_VITALS, P.READ_INCIDENTS, P.ACT_ON_INCIDENT, P.READ_INBOX,
                               P.APPROVE_PATIENT_TEXTS}),
    Role.WARD_ADMIN: frozenset({P.READ_DEAD_LETTERS, P.READ_AUDIT, P.MANAGE_USERS, P.MANAGE_DEVICES,
                                P.ISSUE_ENROLMENT}),
    Role.SERVICE: frozenset({P.READ_VITALS, P.READ_INCIDENTS, P.SERVICE_EXPORT}),
}

SCOPE: dict[Role, Scope] = {
    Role.PATIENT: Scope.SELF,
    Role.CAREGIVER: Scope.LINKED,
    Role.NURSE: Scope.WARDS,
    Role.PHYSICIAN: Scope.WARDS,
    Role.WARD_ADMIN: Scope.WARDS,
    Role.SERVICE: Scope.GRANT,
}

# Roles that read the ward console's inbox (every event of it is filtered by `sees`).
CONSOLE_ROLES = frozenset({Role.NURSE, Role.PHYSICIAN})


def permits(principal: Principal, permission: Permission) -> bool:
    """Whether the caller's role may do `permission` at all."""
    return permission in POLICY.get(principal.role, frozenset())


def sees(principal: Principal, patient_id: str | None, ward: str | None) -> bool:
    """Whether the patient (of `ward`) is within the caller's scope. No patient: nobody's data
    but a ward admin's or a granted service's (e.g. a dead letter from an unknown device)."""
    scope = SCOPE[principal.role]
    if scope in (Scope.SELF, Scope.LINKED):
        return patient_id is not None and patient_id in principal.patients
    if scope is Scope.WARDS:
        if patient_id is None:
            return principal.role is Role.WARD_ADMIN and bool(principal.wards)
        return ward is not None and ward in principal.wards
    if ALL_WARDS in principal.wards:
        return True
    if patient_id is None:
        return False
    return patient_id in principal.patients or (ward is not None and ward in principal.wards)


def allowed(principal: Principal, permission: Permission, patient_id: str | None, ward: str | None) -> bool:
    """May the caller do `permission` on this patient's data: role and scope together."""
    return permits(principal, permission) and sees(principal, patient_id, ward)


def own_member_id(principal: Principal) -> str:
    """The id a person has on care teams: the part of the subject after the provider
    ("local:alice" -> "alice"), which a roster's `member_id` names."""
    return principal.subject.split(":", 1)[1] if ":" in principal.subject else principal.subject


def may_read_inbox(principal: Principal, inbox: str) -> bool:
    """A person reads only their own inbox: a patient "patient:<own id>", a care-team member
    "team:<own member id>", a nurse or physician the ward console ("console", whose events are
    then filtered to the patients they see). Services read no inbox."""
    if not permits(principal, Permission.READ_INBOX):
        return False
    if inbox == "console":
        return principal.role in CONSOLE_ROLES
    kind, _, rest = inbox.partition(":")
    if kind == "patient":
        return principal.role is Role.PATIENT and rest in principal.patients
    if kind == "team":
        return principal.role is not Role.PATIENT and rest == own_member_id(principal)
    return False
