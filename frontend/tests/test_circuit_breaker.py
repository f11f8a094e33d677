"""The circuit breaker (web/circuit_breaker.py) on its own, and around the real httpx client
against a backend that accepts connections but never answers (a stalled process)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.conftest import Clock
from tests.fake_backend import FakeBackend
from web.circuit_breaker import CircuitBreaker, CircuitOpen


def test_opens_after_consecutive_failures_then_one_trial_decides() -> None:
    clock = Clock(100.0)
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(3, 2.0, on_change=lambda a, b: changes.append((a, b)), clock=clock)
    for _ in range(2):
        breaker.record(False, breaker.acquire())
    breaker.record(True, breaker.acquire())  # a success resets the count
    for _ in range(3):
        breaker.record(False, breaker.acquire())
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    clock.now += 2.0
    trial = breaker.acquire()
    assert trial is True and breaker.state == "half_open"
    with pytest.raises(CircuitOpen):  # exactly one trial at a time
        breaker.acquire()
    breaker.record(False, trial)  # the trial failed: open for another 2 s
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    clock.now += 2.0
    breaker.record(True, breaker.acquire())
    assert breaker.state == "closed"
    assert breaker.acquire() is False
    assert changes == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_failures_overlapping_a_success_do_not_open_the_circuit() -> None:
    # Regression: on a busy machine a burst of pages timed out together while other calls
    # were still answered; their failures opened the circuit (1.9 % failed pages in the load
    # gate's slow-machine self-test on CI).
    clock = Clock(100.0)
    breaker = CircuitBreaker(3, 2.0, clock=clock)
    started = clock.now
    slow = [breaker.acquire() for _ in range(4)]  # four calls admitted together
    clock.now += 0.5
    breaker.record(True, breaker.acquire(), clock.now)  # another call is answered meanwhile
    clock.now += 0.5
    for trial in slow:  # the four then time out
        breaker.record(False, trial, started)
    assert breaker.state == "closed"
    # Calls admitted after the last success that all fail: a stall, which opens it.
    for _ in range(3):
        started = clock.now
        trial = breaker.acquire()
        clock.now += 0.8
        breaker.record(False, trial, started)
    assert breaker.state == "open"


def test_calls_run_concurrently_through_the_breaker() -> None:
    """pybreaker holds its lock for the whole call; this one must not serialise calls."""
    breaker = CircuitBreaker(3, 2.0)

    def call() -> None:
        trial = breaker.acquire()
        time.sleep(0.3)
        breaker.record(True, trial)

    threads = [threading.Thread(target=call) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 0.9


def test_stalled_backend_opens_the_circuit_and_recovery_closes_it(make_app) -> None:  # type: ignore[no-untyped-def]
    """A backend that accepts connections but never answers (SIGSTOPped): the first pages
    wait one read timeout, then pages fail at once; once it answers again, service resumes
    by itself after the reset time."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)  # the kernel completes handshakes; nobody ever reads or replies
        port = hung.getsockname()[1]
        app = make_app(
            BACKEND_URL=f"http://127.0.0.1:{port}",
            BACKEND_READ_TIMEOUT_SECONDS=0.3,
            BACKEND_MAX_TIMEOUT_SECONDS=0.3,  # no adaptive budget here (web/budget.py)
            BACKEND_CIRCUIT_FAILURES=2,
            BACKEND_CIRCUIT_RESET_SECONDS=0.5,
        )
        client = app.test_client()
        for _ in range(2):
            started = time.monotonic()
            assert client.get("/flights/1").status_code == 503
            assert time.monotonic() - started >= 0.3  # waited for the read timeout
        started = time.monotonic()
        page = client.get("/flights/1")
        assert page.status_code == 503
        assert time.monotonic() - started < 0.1  # open: no call, no wait
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["circuit_breaker"] == "open"
        assert ready.get_json()["checks"]["backend"].startswith("circuit open")
        metrics = client.get("/metrics").get_data(as_text=True)
        assert 'backend_circuit_breaker_state{state="open"} 1.0' in metrics
        assert 'backend_circuit_breaker_state{state="closed"} 0.0' in metrics

    with FakeBackend(port=port):
        time.sleep(0.6)  # the reset time passes: the next call is the trial
        assert client.get("/flights/1").status_code == 200
        ready = client.get("/readyz").get_json()
        assert ready["circuit_breaker"] == "closed"
        assert ready["checks"] == {"backend": "ok"}
