"""Retries of idempotent backend calls (web/backend_client.py, module doc): what is retried,
on which failures, within which bounds.

The backend side is httpx's own MockTransport (a fake of the network, not of our code): each
test scripts the answers of consecutive attempts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.fake_backend import make_flight
from web.backend_client import (
    RETRY_ATTEMPTS,
    BackendClient,
    BackendUnavailable,
)
from web.settings import Settings

AIRLINES = {"items": [{"carrier": "AA", "name": "American Airlines Inc."}]}
FLIGHT = make_flight(7, carrier="AA", flight=1)

Answer = Callable[[httpx.Request], httpx.Response]


def scripted(*answers: Answer | type[Exception]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering the n-th request with the n-th entry (the last one repeats): a
    function of the request, or an httpx exception class to raise."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, type):
            raise answer("scripted failure", request=request)
        return answer(request)

    return httpx.MockTransport(handle), seen


def unavailable(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"status": 503, "detail": "the database is not ready"})


def ok(body: object, status: int = 200) -> Answer:
    return lambda request: httpx.Response(status, json=body)


def client(
    transport: httpx.BaseTransport, read_timeout: float = 0.8, retry_window: float = 3.0
) -> BackendClient:
    settings = Settings(
        BACKEND_URL="http://backend.test",
        BACKEND_READ_TIMEOUT_SECONDS=read_timeout,
        BACKEND_RETRY_WINDOW_SECONDS=retry_window,
        BACKEND_MAX_TIMEOUT_SECONDS=5.0,
        TELEMETRY_ENABLED=False,
    )
    return BackendClient(settings, transport=transport)


@pytest.mark.parametrize(
    "failure", [unavailable, httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError]
)
def test_a_read_is_retried_after_503_or_a_broken_connection(failure: Answer) -> None:
    transport, seen = scripted(failure, failure, ok(AIRLINES))
    backend = client(transport)
    assert backend.airlines()[0].carrier == "AA"
    assert len(seen) == 3
    # counted once, by its outcome: two failed attempts in a row did not open the circuit
    assert backend.breaker.state == "closed" and backend.breaker._failures == 0


def test_a_timeout_is_not_retried() -> None:
    transport, seen = scripted(httpx.ReadTimeout, ok(AIRLINES))
    with pytest.raises(BackendUnavailable, match="timed out"):
        client(transport).airlines()
    assert len(seen) == 1


def test_a_write_without_a_key_is_not_retried() -> None:
    transport, seen = scripted(httpx.ReadError, ok(FLIGHT, 201))
    with pytest.raises(BackendUnavailable):
        client(transport).create_flight({"carrier": "AA"})
    assert len(seen) == 1


def test_a_write_with_a_key_is_retried_with_the_same_key() -> None:
    transport, seen = scripted(httpx.ReadError, unavailable, ok(FLIGHT, 201))
    created = client(transport).create_flight({"carrier": "AA"}, idempotency_key="k-1")
    assert created.id == 7
    assert [r.headers["Idempotency-Key"] for r in seen] == ['"k-1"'] * 3
    transport, seen = scripted(unavailable, ok(FLIGHT))
    client(transport).update_flight(7, {"flight": 2}, idempotency_key="k-2")
    assert [r.headers["Idempotency-Key"] for r in seen] == ['"k-2"'] * 2


def test_other_errors_are_not_retried() -> None:
    for status in (404, 422, 500, 502):
        transport, seen = scripted(ok({"status": status, "detail": "no"}, status))
        with pytest.raises(Exception):  # noqa: B017 - each status has its own class
            client(transport).get_flight(7)
        assert len(seen) == 1, status


def test_retries_are_bounded_by_attempts_and_the_page_budget() -> None:
    transport, seen = scripted(unavailable)
    backend = client(transport, read_timeout=0.8, retry_window=0)
    backend.budget.succeeded(0.01)  # a worker that has had answers: the budget is the floor
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="503"):
        backend.airlines()
    took = time.monotonic() - started
    assert 2 <= len(seen) <= RETRY_ATTEMPTS
    assert took < 0.8 + 0.3  # never beyond the page's budget (plus scheduling slack)


def test_a_hand_over_longer_than_the_budget_is_bridged_by_the_retry_window() -> None:
    # Regression: on a busy machine a rolling deploy's hand-over took 1.35 s; retries bounded
    # by the 0.8 s page budget gave up and three pages showed 503 (tests/test_rolling_deploy_
    # under_load.py on CI with CPU hogs).
    ready_at = time.monotonic() + 1.3

    def handing_over(request: httpx.Request) -> httpx.Response:
        if time.monotonic() < ready_at:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=AIRLINES)

    backend = client(httpx.MockTransport(handing_over), read_timeout=0.8, retry_window=3.0)
    backend.budget.succeeded(0.01)
    assert backend.airlines()[0].carrier == "AA"


def test_no_retry_while_the_circuit_is_open() -> None:
    transport, seen = scripted(httpx.ConnectError)
    backend = client(transport)
    backend.breaker._failures = backend.breaker.failure_threshold - 1
    with pytest.raises(BackendUnavailable):
        backend.airlines()  # the last failure in a row: the breaker opens
    assert backend.breaker.state == "open"
    sent = len(seen)
    with pytest.raises(BackendUnavailable, match="circuit open"):
        backend.airlines()
    assert len(seen) == sent  # no network at all while open
