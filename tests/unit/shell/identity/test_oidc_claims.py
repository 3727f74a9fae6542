"""Groups to roles and wards: only what the hospital mapped, never a default."""

from __future__ import annotations

import pytest

from vigil.core.identity import Role
from vigil.shell.identity.claims import GroupMapping, OidcRefused

MAPPING = GroupMapping.parse({"/roles/physician": "physician", "/roles/nurse": "nurse",
                              "/roles/ward_admin": "ward_admin"})


def claims(groups, **extra):
    return {"sub": "u-1", "preferred_username": "nina", "groups": groups, **extra}


def test_role_and_wards_come_from_mapped_groups():
    principal = MAPPING.principal(claims(["/roles/nurse", "/wards/ward-a", "/wards/ward-b", "/other"]))
    assert principal.role is Role.NURSE
    assert principal.wards == frozenset({"ward-a", "ward-b"})
    assert principal.subject == "oidc:u-1" and principal.name == "nina" and principal.via == "oidc"


@pytest.mark.parametrize("groups", [[], ["/visitors", "/wards/ward-a"], ["/roles/Physician"], ["roles/physician"],
                                    ["/roles/physician/extra"], ["/roles/patient"], ["/roles/service"]])
def test_no_mapped_group_no_entry(groups):
    with pytest.raises(OidcRefused, match="no group") as refused:
        MAPPING.principal(claims(groups))
    assert refused.value.forbidden


def test_missing_or_malformed_groups_claim_is_refused():
    for bad in [None, "/roles/physician", [1, 2], {"/roles/physician": True}]:
        with pytest.raises(OidcRefused, match="groups"):
            MAPPING.principal({"sub": "u-1", **({} if bad is None else {"groups": bad})})
    with pytest.raises(OidcRefused, match="subject"):
        MAPPING.principal({"groups": ["/roles/nurse"]})


def test_two_roles_are_refused_not_guessed():
    with pytest.raises(OidcRefused, match="several"):
        MAPPING.principal(claims(["/roles/nurse", "/roles/ward_admin"]))


def test_odd_ward_groups_are_ignored():
    principal = MAPPING.principal(claims(["/roles/physician", "/wards/", "/wards/a/b", "/wardsX/c", "/wards/ok"]))
    assert principal.wards == frozenset({"ok"})


def test_only_staff_roles_can_be_mapped():
    for role in ("patient", "caregiver", "service", "admin"):
        with pytest.raises(ValueError):
            GroupMapping.parse({"/g": role})
    with pytest.raises(ValueError):
        GroupMapping.parse({"/roles/nurse": "nurse"}, ward_group_prefix="")
