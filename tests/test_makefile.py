"""`make help` lists every target of the Makefile, each with its `##` description."""

from __future__ import annotations

import re
import subprocess

from conftest import ROOT

MAKEFILE = (ROOT / "Makefile").read_text()


def targets() -> set[str]:
    """Every rule's target name (not variables, not special targets such as .PHONY)."""
    return {m for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9_-]*):(?!=)", MAKEFILE, re.M)}


def phony() -> set[str]:
    return set(" ".join(re.findall(r"^\.PHONY:(.*)$", MAKEFILE, re.M)).split())


def test_every_target_is_phony_and_every_phony_a_target() -> None:
    assert targets() == phony()


def test_every_target_has_a_description() -> None:
    described = set(re.findall(r"^([A-Za-z0-9_-]+):.*## \S", MAKEFILE, re.M))
    assert targets() - described == set()


def test_make_help_lists_every_target() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
        timeout=30, check=True,
    )  # fmt: skip
    listed = set(re.findall(r"^  make (\S+)", result.stdout, re.M))
    assert listed == targets(), result.stdout
