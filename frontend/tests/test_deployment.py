"""A production frontend on plain http says why its forms fail (web/deployment.py): the
Secure session cookie never comes back, so every POST fails CSRF."""

from __future__ import annotations

from tests.fake_backend import FakeBackend
from web.deployment import PLAIN_HTTP_MESSAGE, startup_warnings

SSLIP = "http://x8k2c0w4o8s0g4k0.203.0.113.7.sslip.io"
BANNER = "served over plain HTTP"


def test_start_up_warns_about_an_http_domain_when_the_cookie_is_secure() -> None:
    [warning] = startup_warnings(True, {"COOLIFY_URL": f"https://ok.example.com,{SSLIP}"})
    assert SSLIP in warning and "https://" in warning and "Domains" in warning
    assert "ok.example.com" not in warning
    assert startup_warnings(True, {"COOLIFY_URL": "https://flights.example.com"}) == []
    assert startup_warnings(False, {"COOLIFY_URL": SSLIP}) == []  # cookie not Secure: fine
    assert startup_warnings(True, {}) == []


def test_pages_over_http_show_the_banner_when_the_cookie_is_secure(  # type: ignore[no-untyped-def]
    make_app, fake_backend: FakeBackend
) -> None:
    client = make_app(BACKEND_URL=fake_backend.url, SESSION_COOKIE_SECURE=True).test_client()
    over_http = client.get("/flights/new", headers={"X-Forwarded-Proto": "http"})
    assert BANNER in over_http.get_data(as_text=True)
    over_https = client.get("/flights/new", headers={"X-Forwarded-Proto": "https"})
    assert BANNER not in over_https.get_data(as_text=True)
    plain = make_app(BACKEND_URL=fake_backend.url, SESSION_COOKIE_SECURE=False).test_client()
    assert BANNER not in plain.get("/flights/new").get_data(as_text=True)


def test_a_refused_form_names_the_cause_on_http(  # type: ignore[no-untyped-def]
    make_app, fake_backend: FakeBackend
) -> None:
    client = make_app(BACKEND_URL=fake_backend.url, SESSION_COOKIE_SECURE=True).test_client()
    refused = client.post("/flights/new", data={"carrier": "UA"})  # no cookie, no token
    assert refused.status_code == 400
    assert PLAIN_HTTP_MESSAGE in refused.get_data(as_text=True)
    behind_https = client.post(
        "/flights/new", data={"carrier": "UA"}, headers={"X-Forwarded-Proto": "https"}
    )
    assert behind_https.status_code == 400
    assert PLAIN_HTTP_MESSAGE not in behind_https.get_data(as_text=True)
    assert not any(method == "POST" for method, _, _ in fake_backend.requests)
