"""The real thing: `python -m api serve` as a process on a free port against a DB file."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb

from tests.conftest import API_KEY, AUTH, copy_db

BACKEND = Path(__file__).resolve().parents[1]


def free_port() -> int:
    for _ in range(100):
        port = random.randint(18100, 18999)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18100..18999")


def start(db: Path, port: int, log: Path, **env: str) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "DATABASE_PATH": str(db),
        "PORT": str(port),
        "LOAD_DEMO_DATA": "false",
        "BACKEND_API_KEY": API_KEY,
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "api", "serve"],
        cwd=BACKEND,
        env=environment,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def get_json(port: int, path: str) -> tuple[int, dict]:
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=AUTH)
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_ready(port: int, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "server exited during start-up"
        try:
            if get_json(port, "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


def test_serve_lock_retry_and_clean_sigterm(template_db: Path, tmp_path: Path) -> None:
    db = copy_db(template_db, tmp_path)
    port = free_port()
    server = start(db, port, tmp_path / "server.log")
    try:
        wait_ready(port, server)
        status, body = get_json(port, "/readyz")
        checks = {"database": "ok", "data": "ok", "writes": "ok"}
        assert (status, body) == (200, {"status": "ok", "checks": checks})
        status, body = get_json(port, "/api/v1/stats/carriers")
        ua = next(item for item in body["items"] if item["carrier"] == "UA")
        assert status == 200 and ua["flights"] == 58_665

        # A second process (e.g. the new container of a rolling deploy) waits for the lock,
        # logging each retry, then gives up with a clear error and a non-zero exit.
        second_log = tmp_path / "second.log"
        started = time.monotonic()
        second = start(db, free_port(), second_log, DB_LOCK_TIMEOUT_SECONDS="2")
        assert second.wait(timeout=60) != 0
        elapsed = time.monotonic() - started
        output = second_log.read_text()
        assert '"event":"database.locked"' in output  # each retry
        assert "gave up after 2.0 s" in output
        assert elapsed >= 2

        assert get_json(port, "/readyz")[0] == 200  # the first one is unaffected

        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    log = (tmp_path / "server.log").read_text()
    assert "database.closed" in log and "database.checkpoint_failed" not in log
    assert not Path(f"{db}.wal").exists()  # CHECKPOINT folded the WAL into the file
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM flights").fetchone() == (336_776,)
