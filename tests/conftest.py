"""Whole-system test harness: the real services as real processes on free ports.

Each service runs from its own folder with its own virtual environment, exactly as `make run`
and Coolify start it. The backend gets a temporary DuckDB file; the demo data is loaded once
per test session into a template file that is copied for every stack, which keeps each stack
isolated without paying the load again.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKEND_DIR = ROOT / "backend"
FRONTEND_DIR = ROOT / "frontend"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The key both services share in these tests (BACKEND_API_KEY): the backend requires it, the
# frontend sends it. Tests that call the backend directly send API_AUTH.
API_KEY = "system-test-backend-api-key-0123456789abcdef"
API_AUTH = {"Authorization": f"Bearer {API_KEY}"}
# The fewest fields a valid new flight needs (POST /api/v1/flights), for write-heavy tests.
FLIGHT = {
    "year": 2013,
    "month": 6,
    "day": 1,
    "sched_dep_time": 900,
    "sched_arr_time": 1200,
    "carrier": "UA",
    "flight": 1,
    "origin": "EWR",
    "dest": "SFO",
}


def base_env(**overrides: str) -> dict[str, str]:
    """The environment of a service: ours, minus anything that would leak in from the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_"))}
    env.update({"APP_ENV": "development", "LOG_LEVEL": "INFO", "BACKEND_API_KEY": API_KEY})
    env.update(overrides)
    return env


@dataclass
class Service:
    """One service process: its command, environment, port and captured output (a log file)."""

    name: str
    cwd: Path
    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/readyz", timeout: float = 120.0) -> Service:
        """Start the process and wait until `ready_path` answers 200.

        Raises RuntimeError with the tail of the log when the process exits or the deadline
        (seconds) passes first.
        """
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + ready_path, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """Send SIGTERM, wait up to `timeout` seconds (then SIGKILL); return the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def backend_service(db_path: Path, log_dir: Path, port: int | None = None, **env: str) -> Service:
    """A backend process (one uvicorn process, it owns the DuckDB file at `db_path`)."""
    port = port or free_port()
    return Service(
        name="backend",
        cwd=BACKEND_DIR,
        argv=[str(BACKEND_DIR / ".venv/bin/python"), "-m", "api", "serve"],
        env=base_env(DATABASE_PATH=str(db_path), PORT=str(port), HOST="127.0.0.1", **env),
        port=port,
        log_path=log_dir / f"backend-{port}.log",
    )


def frontend_service(backend_url: str, log_dir: Path, **env: str) -> Service:
    """A frontend process: gunicorn with its production configuration and several workers."""
    port = free_port()
    return Service(
        name="frontend",
        cwd=FRONTEND_DIR,
        argv=[
            str(FRONTEND_DIR / ".venv/bin/gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "web:create_app()",
        ],
        env=base_env(
            **{
                "BACKEND_URL": backend_url,
                "PORT": str(port),
                "HOST": "127.0.0.1",
                "WEB_CONCURRENCY": "2",
                "SECRET_KEY": "system-test-secret-key-that-is-long-enough",
                # A page's budget for backend calls starts at 5 s, not the production 1 s: these
                # tests are not about it, and pages on a busy shared machine can take longer.
                # tests/test_stalled_backend.py runs the production values.
                "BACKEND_READ_TIMEOUT_SECONDS": "5",
                **env,  # the caller's settings win
            }
        ),
        port=port,
        log_path=log_dir / f"frontend-{port}.log",
    )


@dataclass
class Stack:
    """A running backend + frontend pair on free ports over one DuckDB file."""

    backend: Service
    frontend: Service
    db_path: Path


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed DuckDB file holding the demo data, loaded once per session by the real command."""
    path = tmp_path_factory.mktemp("template") / "demo.db"
    subprocess.run(
        [str(BACKEND_DIR / ".venv/bin/python"), "-m", "api", "load-demo-data"],
        cwd=BACKEND_DIR,
        env=base_env(DATABASE_PATH=str(path)),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return path


def copy_db(template: Path, target_dir: Path) -> Path:
    """Copy the template database into `target_dir` (a fresh file per stack)."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "app.db"
    shutil.copyfile(template, target)
    return target


def start_stack(db_path: Path, log_dir: Path) -> Stack:
    backend = backend_service(db_path, log_dir).start()
    try:
        frontend = frontend_service(backend.url, log_dir).start()
    except Exception:
        backend.stop()
        raise
    return Stack(backend=backend, frontend=frontend, db_path=db_path)


@pytest.fixture(scope="session")
def stack(
    demo_db: Path, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One stack shared by the read-mostly tests of the session."""
    running = start_stack(copy_db(demo_db, tmp_path_factory.mktemp("stack")), log_dir)
    yield running
    running.frontend.stop()
    running.backend.stop()


@pytest.fixture
def fresh_stack(demo_db: Path, log_dir: Path, tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own, for tests that stop and start services."""
    running = start_stack(copy_db(demo_db, tmp_path), log_dir)
    yield running
    running.frontend.stop()
    running.backend.stop()
