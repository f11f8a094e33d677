"""Property-based tests of the backend API from its own OpenAPI document (schemathesis).

The real backend process (`python -m api serve`) over a copy of the demo database, with the
API key; schemathesis runs every check it has (`--checks all`: status codes, media types,
response schemas and headers, negative data rejected, positive data accepted, missing auth
rejected, unsupported methods, use after free, ...) in every phase, including the stateful
phase that follows the document's links (POST -> GET/PATCH/DELETE of the new flight). Any
failure of any kind fails the test. Bounded: few examples per operation, a time budget for
the whole run and a hard timeout around it.

Rules beyond JSON Schema are configured, not ignored: a write may be valid by the schema
and still be refused with 422 because its carrier is not in `airlines` or its
year/month/day is not a real date (February 30): `schemathesis.toml` lets
positive_data_acceptance expect 422 for the two write operations only.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import API_KEY, ROOT, backend_service, copy_db

pytestmark = pytest.mark.timeout(420)
SCHEMATHESIS = ROOT / ".venv/bin/schemathesis"


def test_the_api_keeps_every_promise_of_its_openapi_document(
    demo_db: Path, log_dir: Path, tmp_path: Path
) -> None:
    backend = backend_service(
        copy_db(demo_db, tmp_path), log_dir, API_DOCS_ENABLED="true", LOG_LEVEL="WARNING"
    ).start()
    try:
        result = subprocess.run(
            [
                str(SCHEMATHESIS),
                "--config-file",
                str(ROOT / "tests/schemathesis.toml"),
                "run",
                f"{backend.url}/openapi.json",
                "--checks",
                "all",
                "--header",
                f"Authorization: Bearer {API_KEY}",
                "--max-examples",
                "8",
                "--max-time",
                "100",
                "--workers",
                "1",
                "--request-timeout",
                "10",
                "--seed",
                "8",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=360,
            cwd=tmp_path,
        )
    finally:
        backend.stop()
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout, result.stdout[-3000:]
