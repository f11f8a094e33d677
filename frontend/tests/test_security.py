"""Security hardening of the frontend (issue 8): each test names the finding it guards.

Proxy headers, the Server banner and HSTS are tried against real gunicorn (its
forwarded_allow_ips and header writing only exist there); the rest in-process.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from tests.fake_backend import FakeBackend
from tests.test_gunicorn_observability import Gunicorn

PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "frontend-test-secret-key-0123456789abcdef",
    "METRICS_TOKEN": "frontend-test-metrics-token-0123456789",
    "BACKEND_API_KEY": "frontend-test-backend-api-key-0123456789",
    "SESSION_COOKIE_SECURE": "false",
}
FORGED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Prefix": "//evil.example",
}


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    with FakeBackend() as fake:
        yield fake


def start(backend: FakeBackend, tmp_path: Path, **env: str) -> Gunicorn:
    return Gunicorn({"BACKEND_URL": backend.url, **PRODUCTION, **env}, tmp_path / "g.log").start()


# --- findings 3 and 8: forwarded headers from trusted proxies only; HSTS; no Server ---------


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(
    backend: FakeBackend, tmp_path: Path
) -> None:
    server = start(backend, tmp_path, FORWARDED_ALLOW_IPS="10.9.9.9")  # not us (127.0.0.1)
    try:
        page = httpx.get(server.url + "/flights/1", headers={**FORGED, "X-Request-ID": "forged-1"})
        assert page.status_code == 200
        assert "evil.example" not in page.text
        assert 'href="/static/app.css' in page.text
        assert "Strict-Transport-Security" not in page.headers  # the scheme stayed http
        assert "server" not in page.headers
    finally:
        server.stop()
    (access,) = [r for r in server.records() if r.get("request_id") == "forged-1"]
    assert access["client.address"] == "127.0.0.1"


def test_a_trusted_proxy_sets_client_scheme_and_hsts(backend: FakeBackend, tmp_path: Path) -> None:
    server = start(backend, tmp_path, FORWARDED_ALLOW_IPS="127.0.0.1")
    try:
        headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        page = httpx.get(server.url + "/", headers={**headers, "X-Request-ID": "trusted-1"})
        assert page.status_code == 200
        hsts = page.headers["Strict-Transport-Security"]
        assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 365 * 24 * 3600  # type: ignore[union-attr]
        assert "server" not in page.headers
        plain = httpx.get(server.url + "/")
        assert "Strict-Transport-Security" not in plain.headers  # http: no HSTS
    finally:
        server.stop()
    (access,) = [r for r in server.records() if r.get("request_id") == "trusted-1"]
    assert access["client.address"] == "203.0.113.7"


# --- finding 4: allowed hosts, no redirect built from the Host header -----------------------


@pytest.mark.parametrize("path", ["/flights//1", "/static//app.css", "/flights/1"])
def test_a_foreign_host_gets_no_redirect_and_no_page(client: Any, path: str) -> None:
    for headers in ({"Host": "evil.example"}, {"X-Forwarded-Host": "evil.example"}):
        response = client.get(path, headers=headers)
        assert response.status_code == 400, (path, headers)
        assert "evil.example" not in response.headers.get("Location", "")
        assert "evil.example" not in response.get_data(as_text=True)


def test_double_slashes_are_404_not_a_redirect(client: Any) -> None:
    for path in ("/flights//1", "/static//app.css"):
        response = client.get(path)
        assert response.status_code == 404 and "Location" not in response.headers


def test_allowed_hosts_default_and_coolify_domains(
    monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Flask], fake_backend: FakeBackend
) -> None:
    from web.settings import Settings

    monkeypatch.setenv("COOLIFY_FQDN", "flights.example.com,www.example.com")
    monkeypatch.setenv("COOLIFY_URL", "https://flights.example.com,https://www.example.com")
    hosts = Settings().allowed_hosts
    assert hosts == ["localhost", "127.0.0.1", "[::1]", "flights.example.com", "www.example.com"]
    client = make_app(BACKEND_URL=fake_backend.url).test_client()
    assert client.get("/livez", headers={"Host": "localhost:12016"}).status_code == 200
    assert client.get("/", headers={"Host": "flights.example.com"}).status_code == 200
    assert client.get("/", headers={"Host": "other.example.com"}).status_code == 400
    anything = make_app(BACKEND_URL=fake_backend.url, ALLOWED_HOSTS="*").test_client()
    assert anything.get("/livez", headers={"Host": "other.example.com"}).status_code == 200


# --- finding 5: a nested hidden field is no 500; one log line per 500 -----------------------


def test_deeply_nested_seen_field_is_not_a_500(client: Any, fake_backend: FakeBackend) -> None:
    form = client.get("/flights/1/edit").get_data(as_text=True)
    assert 'name="seen"' in form
    data = {
        "date": "2013-01-01",
        "carrier": "UA",
        "flight": "1545",
        "origin": "EWR",
        "dest": "LAX",
        "sched_dep_time": "515",
        "sched_arr_time": "819",
        "seen": "[" * 50_000 + "]" * 50_000,
    }
    response = client.post("/flights/1/edit", data=data)
    assert response.status_code in (303, 413), response.status_code
    short = {**data, "seen": "[" * 3000 + "]" * 3000}
    response = client.post("/flights/1/edit", data=short)
    assert response.status_code == 303
    assert fake_backend.flights[1]["dest"] == "LAX"


def test_an_unhandled_error_is_logged_once(
    make_app: Callable[..., Flask], fake_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(BACKEND_URL=fake_backend.url)

    @app.get("/test-only/boom")
    def boom() -> None:
        raise RuntimeError("kaboom for the frontend test")

    capsys.readouterr()
    response = app.test_client().get("/test-only/boom")
    assert response.status_code == 500
    import json

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    errors = [line for line in lines if "kaboom for the frontend test" in json.dumps(line)]
    assert len(errors) == 1, errors
    assert "Traceback" in errors[0]["exception"] and len(errors[0]["trace_id"]) == 32


# --- finding 8: headers -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/flights/new", "/flights/1/edit", "/flights/1/delete"])
def test_pages_with_forms_are_never_stored(
    make_app: Any, fake_backend: FakeBackend, path: str
) -> None:
    client = make_app(BACKEND_URL=fake_backend.url).test_client()
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "camera=()" in response.headers["Permissions-Policy"]


def test_public_pages_keep_their_caching(client: Any) -> None:
    response = client.get("/flights")
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert "Permissions-Policy" in response.headers


# --- finding 9: CSRF tokens expire; an expired form keeps what was typed --------------------


class _OldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 400 * 24 * 3600


def _token_signed_days_ago(app: Flask, client: Any) -> str:
    with client.session_transaction() as session:
        raw = session["csrf_token"]
    serializer = URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt="wtf-csrf-token", signer=_OldSigner
    )
    return str(serializer.dumps(raw))


def test_an_old_csrf_token_is_refused_and_the_form_is_shown_again(
    make_app: Callable[..., Flask], fake_backend: FakeBackend
) -> None:
    app = make_app(BACKEND_URL=fake_backend.url)  # CSRF on
    client = app.test_client()
    page = client.get("/flights/new").get_data(as_text=True)
    fresh = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    typed = {
        "date": "2013-05-06",
        "carrier": "UA",
        "flight": "777",
        "origin": "JFK",
        "dest": "SFO",
        "sched_dep_time": "1010",
        "sched_arr_time": "1340",
        "tailnum": "N77TEST",
    }
    response = client.post(
        "/flights/new", data={**typed, "csrf_token": _token_signed_days_ago(app, client)}
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "This form expired" in html
    assert 'value="N77TEST"' in html and 'value="SFO"' in html and 'value="777"' in html
    assert not any(method == "POST" for method, _, _ in fake_backend.requests)  # nothing saved
    new_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert fresh  # the token the page had; the re-shown form carries a valid one of its own
    saved = client.post("/flights/new", data={**typed, "csrf_token": new_token})
    assert saved.status_code == 303


def test_an_expired_delete_is_asked_again(
    make_app: Callable[..., Flask], fake_backend: FakeBackend
) -> None:
    app = make_app(BACKEND_URL=fake_backend.url)
    client = app.test_client()
    client.get("/flights/1/delete")
    response = client.post(
        "/flights/1/delete", data={"csrf_token": _token_signed_days_ago(app, client)}
    )
    assert response.status_code == 400
    assert "Delete this flight?" in response.get_data(as_text=True)
    assert 1 in fake_backend.flights


def test_csrf_tokens_have_a_bounded_lifetime(
    make_app: Callable[..., Flask], fake_backend: FakeBackend
) -> None:
    app = make_app(BACKEND_URL=fake_backend.url)
    assert app.config["WTF_CSRF_TIME_LIMIT"] == 3600


# --- findings 1 and 10: the key is sent; settings --------------------------------------------


def test_every_backend_call_carries_the_api_key(
    make_app: Callable[..., Flask], fake_backend: FakeBackend
) -> None:
    client = make_app(
        BACKEND_URL=fake_backend.url, BACKEND_API_KEY="new-key-1,old-key-0"
    ).test_client()
    assert client.get("/").status_code == 200
    assert client.get("/flights/1").status_code == 200
    sent = [headers.get("authorization") for _, _, headers in fake_backend.received]
    assert sent and set(sent) == {"Bearer new-key-1"}  # the first key of a rotation list


def test_production_needs_a_strong_backend_api_key() -> None:
    from pydantic import ValidationError

    from web.settings import Settings

    base = {k: v for k, v in PRODUCTION.items() if k != "SESSION_COOKIE_SECURE"}
    assert Settings(**base).backend_api_key == PRODUCTION["BACKEND_API_KEY"]
    for bad in (None, "short", "x" * 40):
        with pytest.raises(ValidationError, match="BACKEND_API_KEY"):
            Settings(**{**base, "BACKEND_API_KEY": bad})
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(**{**base, "SECRET_KEY": "y" * 40})  # long but one character


def test_the_refusal_line_is_not_mangled_by_redaction(backend: FakeBackend, tmp_path: Path) -> None:
    env = {"BACKEND_URL": backend.url, "APP_ENV": "production", "SECRET_KEY": "z" * 40}
    server = Gunicorn(env, tmp_path / "refusal.log")
    with pytest.raises(RuntimeError, match="exited early"):
        server.start()
    (refusal,) = server.records()
    variables = sorted(e["variable"] for e in refusal["errors"])
    assert variables == ["BACKEND_API_KEY", "METRICS_TOKEN", "SECRET_KEY"]
    assert not any("[REDACTED]" in e["message"] for e in refusal["errors"]), refusal
