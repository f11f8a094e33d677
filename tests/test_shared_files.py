"""Files both services ship (each is deployed alone from its folder) must stay identical."""

from __future__ import annotations

from conftest import ROOT

SHARED = [
    # One set of secret-redaction rules for the logs of both services (docs/observability.md).
    ("backend/api/observability/redaction.py", "frontend/web/observability/redaction.py"),
]


def test_shared_files_are_identical() -> None:
    for first, second in SHARED:
        assert (ROOT / first).read_text() == (ROOT / second).read_text(), (first, second)
