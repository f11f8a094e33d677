"""A Coolify rolling deploy, simulated with real processes on one DuckDB file.

Coolify starts the new backend while the old one still runs and holds the file's lock, and
stops the old one only once the new one's health check passes. The new backend must therefore
be healthy before it can open the database, and take over as soon as the lock is free.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import API_AUTH, backend_service, copy_db

pytestmark = pytest.mark.timeout(300)

NEW_FLIGHT = {
    "year": 2013,
    "month": 12,
    "day": 24,
    "sched_dep_time": 1700,
    "sched_arr_time": 2010,
    "carrier": "B6",
    "flight": 2412,
    "origin": "JFK",
    "dest": "BOS",
}


def wait_until(predicate, timeout: float) -> float:
    """Poll `predicate` until true; return the seconds it took. Fails after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    pytest.fail(f"not true after {timeout} s")


def test_new_backend_takes_over_when_the_old_one_stops(
    demo_db: Path, log_dir: Path, tmp_path: Path
) -> None:
    db_path = copy_db(demo_db, tmp_path)
    old = backend_service(db_path, log_dir).start()
    new = backend_service(db_path, log_dir, DB_LOCK_TIMEOUT_SECONDS="120")
    try:
        # Healthy (what Coolify waits for) while the old container still holds the lock ...
        new.start(ready_path="/health", timeout=60)
        health = httpx.get(new.url + "/health", timeout=5).json()
        assert health["status"] == "starting"
        # ... but honestly not ready, and the API says so instead of failing obscurely.
        ready = httpx.get(new.url + "/readyz", timeout=5)
        assert ready.status_code == 503
        assert "lock" in ready.json()["checks"]["database"]
        api = httpx.get(new.url + "/api/v1/airlines", headers=API_AUTH, timeout=5)
        assert api.status_code == 503
        assert api.headers["content-type"].startswith("application/problem+json")

        # The old one keeps serving, and writes, until Coolify stops it.
        created = httpx.post(
            old.url + "/api/v1/flights", json=NEW_FLIGHT, headers=API_AUTH, timeout=10
        )
        assert created.status_code == 201
        flight_id = created.json()["id"]
        assert old.stop() == 0  # SIGTERM: CHECKPOINT, close, release the lock

        took = wait_until(lambda: httpx.get(new.url + "/readyz", timeout=5).status_code == 200, 30)
        assert took < 10
        moved = httpx.get(f"{new.url}/api/v1/flights/{flight_id}", headers=API_AUTH, timeout=5)
        assert moved.status_code == 200
        assert moved.json()["flight"] == 2412
        assert httpx.get(new.url + "/health", timeout=5).json()["status"] == "ok"
    finally:
        old.stop()
        assert new.stop() == 0


def test_backend_gives_up_when_the_lock_is_never_released(
    demo_db: Path, log_dir: Path, tmp_path: Path
) -> None:
    db_path = copy_db(demo_db, tmp_path)
    old = backend_service(db_path, log_dir).start()
    try:
        new = backend_service(db_path, log_dir, DB_LOCK_TIMEOUT_SECONDS="3")
        new.start(ready_path="/livez", timeout=60)
        assert new.process is not None
        try:
            code = new.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            new.stop()
            pytest.fail("the backend kept waiting past DB_LOCK_TIMEOUT_SECONDS")
        assert code != 0
        assert "DB_LOCK_TIMEOUT_SECONDS" in new.log_text()
        # the old one was never disturbed
        assert httpx.get(old.url + "/readyz", timeout=5).status_code == 200
    finally:
        old.stop()


def test_a_stopping_backend_says_so_at_once_and_keeps_serving_while_it_drains(
    demo_db: Path, log_dir: Path, tmp_path: Path
) -> None:
    """Finding 10 of issue 9: /readyz went from 200 straight to connection refused. Now SIGTERM
    turns /readyz and /health into 503 "draining" at once, while the API still answers, until
    the drain ends (no next backend waits here, so after SHUTDOWN_DRAIN_SECONDS)."""
    db_path = copy_db(demo_db, tmp_path)
    backend = backend_service(db_path, log_dir, SHUTDOWN_DRAIN_SECONDS="4").start()
    assert backend.process is not None
    try:
        backend.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        wait_until(lambda: httpx.get(backend.url + "/readyz", timeout=5).status_code == 503, 2)
        ready = httpx.get(backend.url + "/readyz", timeout=5)
        assert "draining" in ready.json()["checks"]["shutdown"]
        health = httpx.get(backend.url + "/health", timeout=5)
        assert health.status_code == 503 and health.json()["status"] == "fail"
        api = httpx.get(backend.url + "/api/v1/airlines", headers=API_AUTH, timeout=5)
        assert api.status_code == 200  # still serving while it drains
        assert backend.process.wait(timeout=30) == 0
        assert time.monotonic() - sent >= 3.5  # the whole drain: nobody waited for the lock
    finally:
        backend.stop()
