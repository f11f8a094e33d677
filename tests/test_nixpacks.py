"""Nixpacks simulation: deploy each service the way Coolify does, without Docker.

Coolify builds each service from its Base Directory alone with Nixpacks. This test copies
only that folder (minus what .dockerignore leaves out) into an empty place, installs its
pinned `requirements.txt` into a fresh virtual environment (Nixpacks runs pip; uv installs
the same pins faster), applies the `[variables]` of its `nixpacks.toml`, runs its `[start]`
command through `sh -c` exactly as written, probes `/health` like Coolify's health check, and
stops it with SIGTERM as Coolify does. A service that reaches outside its folder, misses a
dependency, ignores PORT/HOST, or does not die cleanly on SIGTERM fails here.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, copy_db, free_port

pytestmark = pytest.mark.timeout(600)
UV = ROOT / ".tools/bin/uv"


def build(service: str, tmp: Path) -> tuple[Path, Path, dict]:
    """Copy the Base Directory alone and install its requirements: returns (app, venv, toml)."""
    source = ROOT / service
    ignored = (
        [
            line.strip().rstrip("/")
            for line in (source / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        if (source / ".dockerignore").exists()
        else []
    )
    ignored += [".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "data"]

    def ignore(_directory: str, names: list[str]) -> set[str]:
        return {n for n in names if any(fnmatch.fnmatch(n, pattern) for pattern in ignored)}

    app = tmp / "app"
    shutil.copytree(source, app, ignore=ignore)
    config = tomllib.loads((app / "nixpacks.toml").read_text())
    assert config["providers"] == ["python"]
    # Python pinned one way only: .python-version, not also NIXPACKS_PYTHON_VERSION.
    assert (app / ".python-version").read_text().strip() == "3.11"
    assert "NIXPACKS_PYTHON_VERSION" not in config.get("variables", {})
    venv = tmp / "opt-venv"
    subprocess.run([str(UV), "venv", "-q", "--python", "3.11", str(venv)], check=True)
    subprocess.run(
        [
            str(UV),
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin/python"),
            "-r",
            str(app / "requirements.txt"),
        ],
        check=True,
        timeout=300,
    )
    return app, venv, config


def start(app: Path, venv: Path, config: dict, log: Path, **env: str) -> subprocess.Popen:
    command = config["start"]["cmd"]
    assert command.startswith("exec "), "start with exec so the server is PID 1"
    assert "|" not in command, "no pipes: the server must receive SIGTERM itself"
    environment = {
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "HOME": str(app),
        **config.get("variables", {}),
        **env,
    }
    return subprocess.Popen(
        ["sh", "-c", command],
        cwd=app,
        env=environment,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_healthy(port: int, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"no healthy answer on :{port}\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)  # Coolify kills after 30 s


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, dict]]:
    """Both services built from their Base Directories: name -> (app, venv, toml)."""
    tmp = tmp_path_factory.mktemp("nixpacks")
    return {name: build(name, tmp / name) for name in ("backend", "frontend")}


SECRETS = {
    "METRICS_TOKEN": "nixpacks-simulation-metrics-token-0123456789",
    "SECRET_KEY": "nixpacks-simulation-secret-key-0123456789abcdef",
    # shared by both services (the backend requires it on /api/v1, the frontend sends it)
    "BACKEND_API_KEY": "nixpacks-simulation-backend-api-key-0123456789",
    # the test speaks plain HTTP; behind Coolify's proxy the cookie stays Secure
    "SESSION_COOKIE_SECURE": "false",
}


def test_each_service_deploys_from_its_base_directory(
    images: dict, tmp_path: Path, demo_db: Path
) -> None:
    backend_app, backend_venv, backend_toml = images["backend"]
    frontend_app, frontend_venv, frontend_toml = images["frontend"]

    # The volume: /app/data inside the container, here the copy's data/ folder.
    copy_db(demo_db, backend_app / "data")
    backend_port, frontend_port = free_port(), free_port()
    backend_log = tmp_path / "backend.log"
    backend = start(
        backend_app,
        backend_venv,
        backend_toml,
        backend_log,
        PORT=str(backend_port),
        HOST="127.0.0.1",
        **SECRETS,
    )
    try:
        wait_healthy(backend_port, backend, backend_log)
        frontend_log = tmp_path / "frontend.log"
        frontend = start(
            frontend_app,
            frontend_venv,
            frontend_toml,
            frontend_log,
            PORT=str(frontend_port),
            HOST="127.0.0.1",
            BACKEND_URL=f"http://127.0.0.1:{backend_port}",
            **SECRETS,
        )
        try:
            wait_healthy(frontend_port, frontend, frontend_log)
            page = httpx.get(f"http://127.0.0.1:{frontend_port}/", timeout=30)
            assert page.status_code == 200 and "336,776" in page.text
        finally:
            assert stop(frontend) == 0, frontend_log.read_text()[-3000:]
    finally:
        assert stop(backend) == 0, backend_log.read_text()[-3000:]
    # SIGTERM let the backend checkpoint: the write-ahead log is folded into the file.
    assert not (backend_app / "data/app.db.wal").exists()


def test_all_in_one_deploys_from_the_repository_root(
    images: dict, tmp_path: Path, demo_db: Path
) -> None:
    """The root nixpacks.toml: its install phase builds the same two requirements files into
    two venvs (reused from the per-service builds), its start command runs both services."""
    config = tomllib.loads((ROOT / "nixpacks.toml").read_text())
    install = "\n".join(config["phases"]["install"]["cmds"])
    variables = dict(config["variables"])
    for name in ("backend", "frontend"):
        assert f"-r {name}/requirements.txt" in install
        assert variables[f"{name.upper()}_VENV"] in install
        variables[f"{name.upper()}_VENV"] = str(images[name][1])
    assert variables["DATABASE_PATH"] == "/app/data/app.db"
    variables["DATABASE_PATH"] = str(copy_db(demo_db, tmp_path / "data"))
    frontend_port = free_port()
    variables.update(BACKEND_PORT=str(free_port()), FRONTEND_PORT=str(frontend_port))
    variables["HOST"] = "127.0.0.1"

    app = tmp_path / "app"
    shutil.copytree(
        ROOT,
        app,
        ignore=shutil.ignore_patterns(".git", ".venv", ".tools", "data", "__pycache__", "*_cache"),
    )
    log = tmp_path / "all-in-one.log"
    process = start(app, images["backend"][1], {**config, "variables": variables}, log, **SECRETS)
    try:
        wait_healthy(frontend_port, process, log)
        page = httpx.get(f"http://127.0.0.1:{frontend_port}/", timeout=30)
        assert page.status_code == 200 and "336,776" in page.text
    finally:
        assert stop(process) == 0, log.read_text()[-3000:]
    assert not Path(variables["DATABASE_PATH"] + ".wal").exists()
