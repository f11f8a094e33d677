"""Security hardening of the backend (issue 8): each test names the finding it guards.

In-process tests use the real app over a copy of the demo database; the logging and
settings tests start `python -m api serve` as a real process (uvicorn's own lines only
exist there).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import SettingsError, get_settings
from tests.conftest import (
    API_KEY,
    AUTH,
    PROBLEM,
    ReadyTestClient,
    copy_db,
    make_settings,
    new_flight,
)
from tests.test_observability import HEX32, parse_lines
from tests.test_server_process import free_port, wait_ready

BACKEND = Path(__file__).resolve().parents[1]
STRONG = "Zq8-vT3nLw0yRb6KpX2sGd9mHf4jCe7aUo1"  # 35 characters, all different
NEW_FLIGHT: dict[str, Any] = new_flight()


@pytest.fixture
def stranger(template_db: Path, tmp_path: Path) -> TestClient:
    """A client that sends no API key, over its own copy of the database."""
    app = create_app(make_settings(copy_db(template_db, tmp_path)))
    with ReadyTestClient(app) as client:
        yield client  # type: ignore[misc]


# --- finding 1: the API refuses strangers ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/flights"),
        ("GET", "/api/v1/flights/1"),
        ("POST", "/api/v1/flights"),
        ("PATCH", "/api/v1/flights/1"),
        ("DELETE", "/api/v1/flights/1"),
        ("GET", "/api/v1/stats/carriers"),
        ("GET", "/api/v1/airlines"),
        ("GET", "/api/v1/no-such-thing"),
        ("PUT", "/api/v1/flights/1"),
    ],
)
def test_api_without_a_key_is_401_problem(stranger: TestClient, method: str, path: str) -> None:
    response = stranger.request(method, path, json=NEW_FLIGHT if method != "GET" else None)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


def test_wrong_key_is_refused_and_nothing_is_written(stranger: TestClient) -> None:
    for value in ("Bearer wrong-key", f"Basic {API_KEY}", API_KEY, f"Bearer {API_KEY}x"):
        response = stranger.delete("/api/v1/flights/1", headers={"Authorization": value})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert stranger.get("/api/v1/flights/1", headers=AUTH).status_code == 200  # still there
    assert stranger.delete("/api/v1/flights/1", headers=AUTH).status_code == 204


def test_probes_stay_open_and_metrics_keeps_its_token(stranger: TestClient) -> None:
    for path in ("/livez", "/readyz", "/health", "/metrics"):
        assert stranger.get(path).status_code == 200, path


def test_two_keys_are_accepted_while_rotating(template_db: Path, tmp_path: Path) -> None:
    settings = make_settings(copy_db(template_db, tmp_path), backend_api_key=f"{STRONG},{API_KEY}")
    with ReadyTestClient(create_app(settings)) as client:
        for key in (STRONG, API_KEY):
            response = client.get("/api/v1/airlines", headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200
        assert (
            client.get("/api/v1/airlines", headers={"Authorization": "Bearer x"}).status_code == 401
        )


def test_a_key_is_required_unless_explicitly_disabled_in_development(
    monkeypatch: pytest.MonkeyPatch, template_db: Path, tmp_path: Path
) -> None:
    monkeypatch.delenv("BACKEND_API_KEY", raising=False)
    monkeypatch.delenv("API_AUTH_DISABLED", raising=False)
    with pytest.raises(SettingsError, match="BACKEND_API_KEY"):
        get_settings()
    assert get_settings(serving=False).api_keys == ()  # migrate, load-demo-data: no key
    monkeypatch.setenv("API_AUTH_DISABLED", "true")
    assert get_settings().api_keys == ()
    # disabled: the API answers without a key (what development asked for)
    settings = make_settings(
        copy_db(template_db, tmp_path), backend_api_key=None, api_auth_disabled=True
    )
    with ReadyTestClient(create_app(settings)) as client:
        assert client.get("/api/v1/airlines").status_code == 200
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("METRICS_PUBLIC", "true")
    with pytest.raises(SettingsError, match="API_AUTH_DISABLED"):
        get_settings()


# --- finding 2: API docs off in production, never from a CDN --------------------------------


def test_docs_are_off_in_production(template_db: Path, tmp_path: Path) -> None:
    settings = make_settings(
        copy_db(template_db, tmp_path),
        app_env="production",
        metrics_token=STRONG,
        backend_api_key=STRONG,
    )
    with ReadyTestClient(create_app(settings)) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404, path
    enabled = settings.model_copy(update={"api_docs_enabled": True})
    with ReadyTestClient(create_app(enabled)) as client:
        assert client.get("/openapi.json").status_code == 200


def test_docs_load_their_assets_from_this_server(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn." not in html and "unpkg" not in html and "googleapis" not in html, page
        assets = [
            part.split('"')[1]
            for part in html.split("src=")[1:] + html.split("href=")[1:]
            if part.startswith('"/')
        ]
        assert assets, html
        for asset in assets:
            assert client.get(asset).status_code == 200, asset


# --- finding 5: no input reaches a 500; an error is logged once ---------------------------


def test_deeply_nested_cursor_is_422_not_500(client: TestClient) -> None:
    nested = base64.urlsafe_b64encode(b"[" * 60 + b"]" * 60).decode().rstrip("=")
    response = client.get("/api/v1/flights", params={"cursor": nested})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "cursor"
    long = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()
    assert client.get("/api/v1/flights", params={"cursor": long}).status_code == 422


def test_deeply_nested_body_is_a_4xx_problem(client: TestClient) -> None:
    body = "[" * 5000 + "]" * 5000
    response = client.post(
        "/api/v1/flights", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM


BOOM_SERVER = textwrap.dedent(
    """
    import sys
    import api.__main__ as cli
    import api.main as main

    def boom():
        raise RuntimeError("kaboom for the test")

    def create_app(settings):
        app = main.create_app(settings)
        app.add_api_route("/test-only/boom", boom)
        return app

    cli.create_app = create_app
    sys.exit(cli.main(["serve"]))
    """
)


def test_an_unhandled_error_is_one_log_line_of_a_real_server(
    template_db: Path, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "DATABASE_PATH": str(copy_db(template_db, tmp_path)),
        "PORT": str(port),
        "LOAD_DEMO_DATA": "false",
        "BACKEND_API_KEY": API_KEY,
    }
    server = subprocess.Popen(
        [sys.executable, "-c", BOOM_SERVER],
        cwd=BACKEND,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(port, server)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/test-only/boom", headers={"X-Request-ID": "boom-request-2"}
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code == 500
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    records = parse_lines(log.read_text())
    errors = [r for r in records if "kaboom for the test" in json.dumps(r)]
    assert len(errors) == 1, errors
    assert "Traceback" in errors[0]["exception"]
    assert HEX32.match(errors[0]["trace_id"]) and errors[0]["request_id"] == "boom-request-2"


# --- finding 6: bounded bodies and values, short quotes ------------------------------------


def test_a_huge_body_is_413_problem(client: TestClient) -> None:
    response = client.post("/api/v1/flights", json={**NEW_FLIGHT, "dest": "X" * 10_000_000})
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert len(response.content) < 1000


def test_bad_values_are_quoted_short(client: TestClient) -> None:
    body = {**NEW_FLIGHT, "dest": "y" * 50_000, "tailnum": "z" * 5_000, "carrier": "q" * 9_000}
    response = client.post("/api/v1/flights", json=body)
    assert response.status_code == 422
    assert len(response.content) < 2000, response.text
    long_key = {**NEW_FLIGHT, "k" * 20_000: 1}
    response = client.post("/api/v1/flights", json=long_key)
    assert response.status_code == 422 and len(response.content) < 2000
    response = client.get("/api/v1/flights", params={"dest": "d" * 30_000, "cursor": "c" * 30_000})
    assert response.status_code == 422 and len(response.content) < 2000


def test_messages_quote_a_truncated_part() -> None:
    from api.schemas import quote

    assert quote("LAX") == "'LAX'"
    assert quote("x" * 1000) == "'xxxxxxxxxxxxxxxxxxxx'…"


# --- finding 7: anchored validation ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("dest", "LAX\n"), ("tailnum", "N123\n"), ("carrier", "UA\n"), ("origin", "JFK\n")],
)
def test_a_trailing_newline_is_refused(writable_client: TestClient, field: str, value: str) -> None:
    response = writable_client.post("/api/v1/flights", json={**NEW_FLIGHT, field: value})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    patch = writable_client.patch("/api/v1/flights/1", json={field: value})
    assert patch.status_code == 422


def test_query_filters_are_anchored(client: TestClient) -> None:
    assert client.get("/api/v1/flights", params={"dest": "LAX\n"}).status_code == 422
    assert client.get("/api/v1/stats/daily", params={"carrier": "UA\n"}).status_code == 422


# --- finding 10: settings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("METRICS_TOKEN", "a"),
        ("METRICS_TOKEN", "x" * 40),
        ("BACKEND_API_KEY", "short"),
        ("BACKEND_API_KEY", "ab" * 20),
        ("BACKEND_API_KEY", f"{STRONG},weak"),
    ],
)
def test_production_refuses_weak_secrets(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("METRICS_TOKEN", STRONG)
    monkeypatch.setenv("BACKEND_API_KEY", STRONG)
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        get_settings()
    assert [p["variable"] for p in info.value.problems] == [name]
    assert len(value) < 5 or value not in str(info.value)  # the secret is never repeated


def test_every_invalid_setting_is_reported_at_once_as_one_json_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("METRICS_TOKEN", "BACKEND_API_KEY")}
    env.update(
        APP_ENV="production",
        PORT="nope",
        METRICS_TOKEN="a",
        DATABASE_PATH=str(tmp_path / "app.db"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "api", "serve"],
        cwd=BACKEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == ""
    (line,) = [line for line in result.stdout.splitlines() if line.strip()]
    record = json.loads(line)
    assert record["level"] == "critical" and record["service.name"] == "flights-backend"
    variables = {problem["variable"] for problem in record["errors"]}
    assert variables == {"PORT", "METRICS_TOKEN", "BACKEND_API_KEY"}
    assert all("[REDACTED]" not in problem["message"] for problem in record["errors"])
    assert not (tmp_path / "app.db").exists()


def test_secrets_in_free_text_are_redacted(client: TestClient, capsys: Any) -> None:
    capsys.readouterr()
    client.get("/livez", headers={"User-Agent": "probe/1.0 Bearer leaked-credential-42"})
    out = capsys.readouterr().out
    assert "leaked-credential-42" not in out
    assert "probe/1.0 Bearer [REDACTED]" in out
    assert API_KEY not in out


# --- finding 11: HTTP semantics -------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/livez", "/readyz", "/health", "/metrics", "/api/v1/flights", "/api/v1/flights/1"]
)
def test_head_is_answered_on_every_get_route(client: TestClient, path: str) -> None:
    get = client.get(path)
    head = client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_405_lists_every_method_of_the_path(client: TestClient) -> None:
    response = client.put("/api/v1/flights/1", json=NEW_FLIGHT)
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH"
    response = client.delete("/api/v1/flights")
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert client.post("/livez").headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(
    writable_client: TestClient, content_type: str | None
) -> None:
    client = writable_client
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(NEW_FLIGHT).encode()
    for method, path in (("POST", "/api/v1/flights"), ("PATCH", "/api/v1/flights/1")):
        response = client.request(method, path, content=body, headers=headers)
        assert response.status_code == 415, (method, response.text)
        assert response.headers["content-type"] == PROBLEM
    ok = client.post(
        "/api/v1/flights", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert ok.status_code != 415


# --- finding 12: the OpenAPI document describes the API -------------------------------------


def test_openapi_declares_problem_json_statuses_and_rules(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    problem = {"$ref": "#/components/schemas/Problem"}
    assert {"500", "503"} <= set(paths["/readyz"]["get"]["responses"])
    for path, operations in paths.items():
        if not path.startswith("/api/v1"):
            continue
        for method, operation in operations.items():
            for status in ("401", "500"):
                assert status in operation["responses"], (method, path, status)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == [PROBLEM], (method, path, status)
                    assert response["content"][PROBLEM]["schema"] == problem
            assert operation["security"] == [{"BackendApiKey": []}]
    assert {"400", "404", "409", "413", "415", "422", "503"} <= set(
        paths["/api/v1/flights/{flight_id}"]["patch"]["responses"]
    )
    created = paths["/api/v1/flights"]["post"]["responses"]["201"]
    assert (
        "409" in paths["/api/v1/flights"]["post"]["responses"] and "Location" in created["headers"]
    )
    assert {"get_flight", "patch_flight", "delete_flight"} == {
        link["operationId"] for link in created["links"].values()
    }
    assert "404" in paths["/api/v1/flights/{flight_id}"]["get"]["responses"]
    assert "503" in paths["/api/v1/stats/carriers"]["get"]["responses"]
    fields = schema["components"]["schemas"]["FlightCreate"]["properties"]
    assert fields["dest"]["pattern"] == "^[A-Z]{3}$" and fields["dest"]["maxLength"] == 3
    assert fields["tailnum"]["anyOf"][0]["pattern"] == "^[A-Z0-9]{1,10}$"
    clock = fields["sched_dep_time"]
    assert {"minimum": 2300, "maximum": 2359} in clock["anyOf"]
    assert {"minimum": 1260, "maximum": 1299} not in clock["anyOf"]
    assert schema["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "instance",
    ]
