"""The attacker suite: every attack a test makes is a row of one table, printed at the end of the run.

API (kept tiny, shared by every surface's file: test_http_attacks.py, test_mqtt_attacks.py,
test_oidc_attacks.py, ...): the `record_attack` fixture, `record_attack(surface, attack, runtime,
refused)`. Record the outcome you observed, then assert it: a test must assert `refused`, not only
record it. The table counts, per surface and runtime, what was refused and what got through
(target: nothing got through), and names every attack that got through.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import pytest


@dataclass(frozen=True, slots=True)
class AttackRow:
    surface: str  # mqtt, http, oidc, …
    attack: str
    runtime: str  # embedded, scaled (mosquitto, gateway), notifier, …
    refused: bool


ROWS: list[AttackRow] = []


@pytest.fixture(scope="session")
def record_attack() -> Callable[[str, str, str, bool], None]:
    """`record_attack(surface, attack, runtime, refused)`: one row of the table printed at the end."""

    def record(surface: str, attack: str, runtime: str, refused: bool) -> None:
        ROWS.append(AttackRow(surface, attack, runtime, bool(refused)))

    return record


def attack_table(rows: list[AttackRow]) -> list[str]:
    """Per surface and runtime: attacks refused and let through; then each attack let through."""
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        totals[(row.surface, row.runtime)][0 if row.refused else 1] += 1
    lines = ["| surface | runtime | refused | got through |", "|---|---|---|---|"]
    lines += [f"| {surface} | {runtime} | {refused} | {through} |"
              for (surface, runtime), (refused, through) in sorted(totals.items())]
    through = [row for row in rows if not row.refused]
    lines.append(f"{len(rows)} attacks, {len(rows) - len(through)} refused, {len(through)} got through")
    lines += [f"GOT THROUGH: [{r.surface}/{r.runtime}] {r.attack}" for r in through]
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001, ARG001
    if ROWS:
        terminalreporter.section("attacker suite")
        for line in attack_table(ROWS):
            terminalreporter.write_line(line)
