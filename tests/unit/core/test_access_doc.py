"""docs/security.md's role table says what vigil.core.access does: the same permissions and scope per role."""

from __future__ import annotations

import re
from pathlib import Path

from vigil.core.access import POLICY, SCOPE
from vigil.core.identity import Role

DOC = Path(__file__).resolve().parents[3] / "docs" / "security.md"


def role_table() -> dict[str, tuple[str, set[str]]]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## People"):]
    section = section[:section.index("\n## ", 3)]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            scope = re.match(r"`(\w+)`", cells[1])
            rows[cells[0].strip("`")] = (scope.group(1) if scope else "", set(re.findall(r"`(\w+)`", cells[2])))
    return rows


def test_the_doc_has_one_row_per_role_matching_the_policy() -> None:
    table = role_table()
    assert set(table) == {role.value for role in Role}
    for role in Role:
        scope, permissions = table[role.value]
        assert permissions == {p.value for p in POLICY[role]}, role
        assert scope == SCOPE[role].value, role
