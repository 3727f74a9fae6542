"""The access policy, exhaustively: every role x permission, and every scope."""

from __future__ import annotations

import pytest

from vigil.core.access import (ALL_WARDS, POLICY, SCOPE, Permission, Scope, allowed, may_read_inbox, own_member_id,
                               permits, sees)
from vigil.core.identity import Principal, Role

P = Permission
# The expected matrix, written out again by hand: a change to the policy must change this test too.
EXPECTED = {
    Role.PATIENT: {P.READ_VITALS, P.READ_INCIDENTS, P.READ_INBOX},
    Role.CAREGIVER: {P.READ_VITALS, P.READ_INCIDENTS, P.READ_INBOX},
    Role.NURSE: {P.READ_VITALS, P.READ_INCIDENTS, P.ACT_ON_INCIDENT, P.READ_INBOX, P.ISSUE_ENROLMENT},
    Role.PHYSICIAN: {P.READ_VITALS, P.READ_INCIDENTS, P.ACT_ON_INCIDENT, P.READ_INBOX, P.APPROVE_PATIENT_TEXTS},
    Role.WARD_ADMIN: {P.READ_DEAD_LETTERS, P.READ_AUDIT, P.MANAGE_USERS, P.MANAGE_DEVICES, P.ISSUE_ENROLMENT},
    Role.SERVICE: {P.READ_VITALS, P.READ_INCIDENTS, P.SERVICE_EXPORT},
}


def who(role: Role, *, wards: set[str] = frozenset(), patients: set[str] = frozenset(), subject: str = "local:x") -> Principal:
    return Principal(subject, "X", role, frozenset(wards), frozenset(patients))


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_every_role_and_permission(role: Role, permission: Permission) -> None:
    assert permits(who(role), permission) is (permission in EXPECTED[role])


def test_every_role_has_a_row_and_a_scope() -> None:
    assert set(POLICY) == set(Role) == set(SCOPE) == set(EXPECTED)


# (role, principal's wards, principal's patients, patient, patient's ward) -> sees
SCOPES = [
    (Role.PATIENT, set(), {"p1"}, "p1", "w1", True),
    (Role.PATIENT, set(), {"p1"}, "p2", "w1", False),  # the neighbour in the same ward
    (Role.PATIENT, {"w1"}, set(), "p1", "w1", False),  # a ward means nothing to a patient
    (Role.PATIENT, set(), {"p1"}, None, None, False),
    (Role.CAREGIVER, set(), {"p1", "p3"}, "p3", "w2", True),
    (Role.CAREGIVER, set(), {"p1"}, "p2", "w1", False),
    (Role.CAREGIVER, {"w1"}, set(), "p1", "w1", False),
    (Role.NURSE, {"w1"}, set(), "p1", "w1", True),
    (Role.NURSE, {"w1"}, set(), "p2", "w2", False),  # another ward's patient
    (Role.NURSE, {"w1"}, {"p2"}, "p2", "w2", False),  # patients mean nothing to a clinician
    (Role.NURSE, {"w1"}, set(), None, None, False),
    (Role.NURSE, {ALL_WARDS}, set(), "p1", "w1", False),  # no wildcard for people
    (Role.PHYSICIAN, {"w1", "w2"}, set(), "p2", "w2", True),
    (Role.PHYSICIAN, set(), set(), "p1", "w1", False),
    (Role.PHYSICIAN, {"w1"}, set(), "p1", None, False),  # a patient with no ward is nobody's
    (Role.WARD_ADMIN, {"w1"}, set(), "p1", "w1", True),
    (Role.WARD_ADMIN, {"w1"}, set(), "p2", "w2", False),
    (Role.WARD_ADMIN, {"w1"}, set(), None, None, True),  # unknown device's dead letter
    (Role.WARD_ADMIN, set(), set(), None, None, False),
    (Role.SERVICE, {ALL_WARDS}, set(), "p1", "w1", True),
    (Role.SERVICE, {ALL_WARDS}, set(), None, None, True),
    (Role.SERVICE, {"w1"}, set(), "p1", "w1", True),
    (Role.SERVICE, {"w1"}, set(), "p2", "w2", False),
    (Role.SERVICE, set(), {"p2"}, "p2", "w2", True),
    (Role.SERVICE, {"w1"}, set(), None, None, False),
]


@pytest.mark.parametrize("role,wards,patients,patient,ward,expected", SCOPES)
def test_scope(role, wards, patients, patient, ward, expected) -> None:
    assert sees(who(role, wards=wards, patients=patients), patient, ward) is expected


def test_scopes_cover_every_role() -> None:
    assert {row[0] for row in SCOPES} == set(Role)
    assert SCOPE[Role.PATIENT] is Scope.SELF and SCOPE[Role.NURSE] is Scope.WARDS


def test_allowed_needs_both_role_and_scope() -> None:
    nurse = who(Role.NURSE, wards={"w1"})
    assert allowed(nurse, P.ACT_ON_INCIDENT, "p1", "w1")
    assert not allowed(nurse, P.ACT_ON_INCIDENT, "p2", "w2")
    assert not allowed(who(Role.PATIENT, patients={"p1"}), P.ACT_ON_INCIDENT, "p1", "w1")
    assert not allowed(who(Role.WARD_ADMIN, wards={"w1"}), P.READ_VITALS, "p1", "w1")


INBOXES = [
    (who(Role.PATIENT, patients={"p1"}), "patient:p1", True),
    (who(Role.PATIENT, patients={"p1"}), "patient:p2", False),
    (who(Role.PATIENT, patients={"p1"}), "console", False),
    (who(Role.PATIENT, patients={"p1"}, subject="local:alice"), "team:alice", False),
    (who(Role.CAREGIVER, patients={"p1"}, subject="local:bob"), "team:bob", True),
    (who(Role.CAREGIVER, patients={"p1"}, subject="local:bob"), "patient:p1", False),
    (who(Role.CAREGIVER, patients={"p1"}, subject="local:bob"), "team:carol", False),
    (who(Role.NURSE, wards={"w1"}), "console", True),
    (who(Role.PHYSICIAN, wards={"w1"}, subject="oidc:dr-ahmed"), "team:dr-ahmed", True),
    (who(Role.PHYSICIAN, wards={"w1"}), "patient:p1", False),
    (who(Role.WARD_ADMIN, wards={"w1"}), "console", False),
    (who(Role.SERVICE, wards={ALL_WARDS}), "console", False),
    (who(Role.NURSE, wards={"w1"}), "elsewhere", False),
]


@pytest.mark.parametrize("principal,inbox,expected", INBOXES)
def test_inbox(principal, inbox, expected) -> None:
    assert may_read_inbox(principal, inbox) is expected


def test_own_member_id() -> None:
    assert own_member_id(who(Role.NURSE, subject="local:alice")) == "alice"
    assert own_member_id(who(Role.NURSE, subject="alice")) == "alice"
