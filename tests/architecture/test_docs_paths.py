"""The docs name files that exist: every repository path in README.md and docs/*.md is real.

A restructuring moves files; docs that still send a newcomer to the old place are worse than none."""

from __future__ import annotations

import re

from import_graph import REPO

PATH = re.compile(r"(?<![\w./-])((?:services|simulators|models|deploy|tests|docs)/[\w./-]*[\w/])")
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "models" / "MODEL_CARD.md"]


def missing_paths() -> list[str]:
    found = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for match in PATH.finditer(line):
                path = match.group(1).rstrip(".")
                if "*" in path or "{" in path:
                    continue
                if not (REPO / path).exists():
                    found.append(f"{doc.relative_to(REPO)}:{number}: {path}")
    return found


def test_every_path_in_the_docs_exists():
    assert not missing_paths(), "docs name paths that do not exist:\n" + "\n".join(missing_paths())


def test_the_docs_check_reads_paths():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(PATH.findall(text)) > 10
