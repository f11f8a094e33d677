"""The unavailable path for real: closed port first, then a real HTTP server on that port."""

from __future__ import annotations

import socket
import time

from tests.conftest import free_port
from tests.fake_backend import FakeBackend


def test_livez_touches_nothing(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(BACKEND_URL=f"http://127.0.0.1:{free_port()}")
    response = app.test_client().get("/livez")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_backend_down_then_recovers_without_restart(make_app) -> None:  # type: ignore[no-untyped-def]
    port = free_port()  # bound then closed: nothing listens there now
    # The circuit breaker stays out of this test (tests/test_circuit_breaker.py has its own).
    app = make_app(BACKEND_URL=f"http://127.0.0.1:{port}", BACKEND_CIRCUIT_FAILURES=100)
    client = app.test_client()

    started = time.monotonic()
    page = client.get("/")
    assert page.status_code == 503
    assert page.headers["Retry-After"].isdigit()
    html = page.get_data(as_text=True)
    assert "Temporarily unavailable" in html
    assert "Traceback" not in html
    assert time.monotonic() - started < 5  # fails fast, no retry loop

    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == "fail"
    assert set(body["checks"]) == {"backend"}
    assert body["checks"]["backend"]
    # Coolify's probe stays 200 (its proxy would drop the frontend and hide the 503 page);
    # it still names the backend's state.
    health = client.get("/health")
    assert health.status_code == 200
    assert health.get_json() == {
        "status": "degraded",
        "checks": body["checks"],
        "circuit_breaker": "closed",
    }

    with FakeBackend(port=port):
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.get_json()
        ok = {"status": "ok", "checks": {"backend": "ok"}, "circuit_breaker": "closed"}
        assert ready.get_json() == ok
        assert client.get("/health").get_json() == ok
        page = client.get("/")
        assert page.status_code == 200
        assert "Mean arrival delay by carrier" in page.get_data(as_text=True)

    # And back down again: no stale state keeps claiming success.
    assert client.get("/readyz").status_code == 503
    assert client.get("/flights").status_code == 503


def test_backend_5xx_is_unavailable(app, fake_backend) -> None:  # type: ignore[no-untyped-def]
    fake_backend.status_override = 500
    response = app.test_client().get("/")
    assert response.status_code == 503
    assert "Retry-After" in response.headers


def test_hung_backend_times_out_to_503(make_app) -> None:  # type: ignore[no-untyped-def]
    """A backend that accepts connections but never answers must not hang the page."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # the kernel completes handshakes; nobody ever reads or replies
        port = hung.getsockname()[1]
        app = make_app(
            BACKEND_URL=f"http://127.0.0.1:{port}",
            BACKEND_READ_TIMEOUT_SECONDS=0.3,
            BACKEND_MAX_TIMEOUT_SECONDS=0.3,  # no adaptive budget here (web/budget.py)
            READINESS_TIMEOUT_SECONDS=0.3,
        )
        client = app.test_client()
        started = time.monotonic()
        assert client.get("/").status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "timeout" in ready.get_json()["checks"]["backend"]
        assert time.monotonic() - started < 3
