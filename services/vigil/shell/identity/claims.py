"""From a verified ID token's claims to a Vigil Principal: the hospital's groups, mapped.

Only groups the hospital mapped (VIGIL_OIDC_ROLE_GROUPS) give a role; a user in none of them is
refused, never given a default. A user in groups of two different roles is refused too (the
identity provider must say one thing). Wards come from groups under VIGIL_OIDC_WARD_GROUP_PREFIX.
Single sign-on is for hospital staff: only nurse, physician and ward admin can be mapped
(patients and caregivers are bound to their patient by enrolment, services use client credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vigil.core.identity import Principal, Role

STAFF_ROLES = frozenset({Role.NURSE, Role.PHYSICIAN, Role.WARD_ADMIN})


class OidcRefused(Exception):
    """A login or token refused, with a reason safe to show the caller (never a token).
    `forbidden`: the person is known but has no Vigil role (403, not 400)."""

    def __init__(self, reason: str, *, forbidden: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.forbidden = forbidden


@dataclass(frozen=True)
class GroupMapping:
    """Which identity-provider groups make which Vigil role, and which make wards."""

    role_groups: Mapping[str, Role] = field(default_factory=dict)
    ward_group_prefix: str = "/wards/"
    groups_claim: str = "groups"
    name_claim: str = "preferred_username"

    @classmethod
    def parse(cls, role_groups: Mapping[str, str], ward_group_prefix: str = "/wards/",
              groups_claim: str = "groups", name_claim: str = "preferred_username") -> GroupMapping:
        """Checked settings: each group maps to a staff role by its value ("physician")."""
        roles: dict[str, Role] = {}
        for group, role_name in role_groups.items():
            try:
                role = Role(role_name)
            except ValueError:
                raise ValueError(f"VIGIL_OIDC_ROLE_GROUPS: {role_name!r} is not a role") from None
            if role not in STAFF_ROLES:
                raise ValueError(f"VIGIL_OIDC_ROLE_GROUPS: single sign-on cannot grant {role.value!r}")
            if not group:
                raise ValueError("VIGIL_OIDC_ROLE_GROUPS: empty group name")
            roles[group] = role
        if not ward_group_prefix:
            raise ValueError("VIGIL_OIDC_WARD_GROUP_PREFIX must not be empty")
        return cls(roles, ward_group_prefix, groups_claim, name_claim)

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        """The staff member these claims describe; OidcRefused if no mapped group says who they are."""
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise OidcRefused("the token has no subject")
        groups = claims.get(self.groups_claim)
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise OidcRefused(f"the token has no {self.groups_claim!r} claim: map the groups into the ID token",
                              forbidden=True)
        roles = {self.role_groups[g] for g in groups if g in self.role_groups}
        if not roles:
            raise OidcRefused("this account is in no group that grants a Vigil role", forbidden=True)
        if len(roles) > 1:
            raise OidcRefused("this account is in groups of several Vigil roles; the identity provider must give one",
                              forbidden=True)
        wards = frozenset(w for g in groups if g.startswith(self.ward_group_prefix)
                          for w in [g[len(self.ward_group_prefix):]] if w and "/" not in w)
        name = claims.get(self.name_claim) or claims.get("name") or subject
        return Principal(subject=f"oidc:{subject}", name=str(name)[:200], role=roles.pop(), wards=wards, via="oidc")
