"""The attacker suite's bookkeeping: every attack is recorded, and the run ends with a table of
what was tried against which runtime and whether it was refused (target: nothing let through).

`record_attack(surface, attack, runtime, refused)` is a fixture; one file per surface
(test_http_attacks.py, test_mqtt_attacks.py, ...)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import pytest

ATTACKS: list[tuple[str, str, str, bool]] = []


def _record(surface: str, attack: str, runtime: str, refused: bool) -> None:
    ATTACKS.append((surface, attack, runtime, bool(refused)))


@pytest.fixture(scope="session")
def record_attack() -> Callable[[str, str, str, bool], None]:
    return _record


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    if not ATTACKS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("attacker suite")
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for surface, _attack, runtime, refused in ATTACKS:
        totals[(surface, runtime)][0 if refused else 1] += 1
    write(f"{'surface':<14} {'runtime':<10} {'refused':>8} {'let through':>12}")
    for (surface, runtime), (refused, through) in sorted(totals.items()):
        write(f"{surface:<14} {runtime:<10} {refused:>8} {through:>12}")
    for surface, attack, runtime, refused in ATTACKS:
        if not refused:
            write(f"LET THROUGH: [{surface}/{runtime}] {attack}")
