"""The attacker suite: every attack a test makes is a row of one table, printed at the end of the run.

API (kept tiny, shared by every surface's file): the `record_attack` fixture,
`record_attack(surface, attack, runtime, refused)`. Record the outcome you observed, then assert it:
a test must assert `refused`, not only record it. The table counts what got through (target: 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest


@dataclass(frozen=True, slots=True)
class AttackRow:
    surface: str  # mqtt, http, oidc, …
    attack: str
    runtime: str  # embedded, scaled (mosquitto, gateway), …
    refused: bool


ROWS: list[AttackRow] = []


@pytest.fixture(scope="session")
def record_attack() -> Callable[[str, str, str, bool], None]:
    """`record_attack(surface, attack, runtime, refused)`: one row of the table printed at the end."""

    def record(surface: str, attack: str, runtime: str, refused: bool) -> None:
        ROWS.append(AttackRow(surface, attack, runtime, bool(refused)))

    return record


def attack_table(rows: list[AttackRow]) -> list[str]:
    """The rows as a Markdown table, then one line counting what got through."""
    lines = ["| surface | attack | runtime | outcome |", "|---|---|---|---|"]
    lines += [f"| {r.surface} | {r.attack} | {r.runtime} | {'refused' if r.refused else 'GOT THROUGH'} |"
              for r in sorted(rows, key=lambda r: (r.surface, r.runtime, r.attack))]
    through = sum(not r.refused for r in rows)
    lines.append(f"{len(rows)} attacks, {len(rows) - through} refused, {through} got through")
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001, ARG001
    if ROWS:
        terminalreporter.section("attacker suite")
        for line in attack_table(ROWS):
            terminalreporter.write_line(line)
