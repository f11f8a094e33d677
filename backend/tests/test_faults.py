"""FAULT_INJECTION: faults on routes and named queries, parsed from the environment, refused
in production, visible in the metrics exactly as a slow or failing route or query would be."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from api import faults
from api.main import create_app
from api.settings import SettingsError, get_settings
from tests.conftest import AUTH, ReadyTestClient, copy_db, make_settings

FLIGHT_ROUTE = "GET /api/v1/flights/{flight_id}"


def fault_client(template_db: Path, tmp_path: Path, spec: list[dict]) -> TestClient:
    settings = make_settings(copy_db(template_db, tmp_path), fault_injection=spec)
    return ReadyTestClient(create_app(settings), headers=AUTH)


@pytest.fixture(autouse=True)
def _no_faults_left_behind() -> Iterator[None]:
    yield
    faults.configure([])  # query faults are per process: later tests must not see them


def elapsed(client: TestClient, url: str) -> tuple[float, int]:
    started = time.perf_counter()
    status = client.get(url).status_code
    return time.perf_counter() - started, status


def test_parsed_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FAULT_INJECTION",
        f'[{{"route": "{FLIGHT_ROUTE}", "slowdown": 3}}, {{"query": "flight_list", '
        '"delay_ms": 50, "error_rate": 0.5}]',
    )
    settings = get_settings()
    assert [(f.route, f.query, f.slowdown, f.delay_ms) for f in settings.fault_injection] == [
        (FLIGHT_ROUTE, None, 3.0, 0.0),
        (None, "flight_list", 1.0, 50.0),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "FAULT_INJECTION: not a JSON list"),
        ('[{"route": "GET /x", "query": "y", "delay_ms": 1}]', "exactly one"),
        ('[{"query": "flight_list"}]', "needs delay_ms"),
        ('[{"query": "flight_list", "slowdown": 0.5}]', "FAULT_INJECTION"),
        ('[{"query": "flight_list", "error_rate": 2}]', "FAULT_INJECTION"),
        ('[{"query": "flight_list", "delay": 5}]', "FAULT_INJECTION"),
    ],
)
def test_invalid_faults_are_refused(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("FAULT_INJECTION", value)
    with pytest.raises(SettingsError, match=message):
        get_settings()


def test_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("METRICS_TOKEN", "a-token-for-this-test-0123456789")
    monkeypatch.setenv("BACKEND_API_KEY", "an-api-key-for-this-test-0123456789")
    monkeypatch.setenv("FAULT_INJECTION", '[{"query": "flight_list", "delay_ms": 5}]')
    with pytest.raises(SettingsError, match="refused when APP_ENV=production"):
        get_settings()
    monkeypatch.setenv("FAULT_INJECTION", "")  # empty, as in .env.example: no faults
    assert get_settings().fault_injection == []


def test_route_delay_and_slowdown_apply_to_that_route_only(
    template_db: Path, tmp_path: Path
) -> None:
    spec = [{"route": FLIGHT_ROUTE, "delay_ms": 1000}]
    with fault_client(template_db, tmp_path, spec) as client:
        slow, status = elapsed(client, "/api/v1/flights/1")
        assert status == 200 and slow >= 1.0
        # Another route of the same app is not delayed (side by side, not an absolute limit).
        fast, status = elapsed(client, "/api/v1/airlines")
        assert status == 200 and fast < slow - 0.5
        # The route's own latency histogram sees the delay (it is the service's latency).
        count = REGISTRY.get_sample_value(
            "http_server_request_duration_seconds_bucket",
            {
                "http_request_method": "GET",
                "http_route": "/api/v1/flights/{flight_id}",
                "http_response_status_code": "200",
                "le": "0.75",
            },
        )
        total = REGISTRY.get_sample_value(
            "http_server_request_duration_seconds_count",
            {
                "http_request_method": "GET",
                "http_route": "/api/v1/flights/{flight_id}",
                "http_response_status_code": "200",
            },
        )
        assert total is not None and count is not None and total - count >= 1


def test_route_errors_answer_problem_json_and_write_nothing(
    template_db: Path, tmp_path: Path
) -> None:
    spec = [{"route": "DELETE /api/v1/flights/{flight_id}", "error_rate": 1}]
    with fault_client(template_db, tmp_path, spec) as client:
        response = client.delete("/api/v1/flights/1")
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "injected fault (FAULT_INJECTION)"
        assert response.headers["x-request-id"]
        assert client.get("/api/v1/flights/1").status_code == 200  # not deleted


def test_query_faults_slow_and_fail_the_named_query(template_db: Path, tmp_path: Path) -> None:
    spec = [
        {"query": "flight_get", "delay_ms": 300},
        {"query": "airlines_list", "error_rate": 1},
    ]
    with fault_client(template_db, tmp_path, spec) as client:
        slow, status = elapsed(client, "/api/v1/flights/1")
        assert status == 200 and slow >= 0.3
        before = (
            REGISTRY.get_sample_value(
                "duckdb_query_duration_seconds_count",
                {"query": "airlines_list", "outcome": "error"},
            )
            or 0
        )
        failed = client.get("/api/v1/airlines")
        assert failed.status_code == 500
        assert failed.headers["content-type"] == "application/problem+json"
        after = REGISTRY.get_sample_value(
            "duckdb_query_duration_seconds_count", {"query": "airlines_list", "outcome": "error"}
        )
        assert after == before + 1  # counted as a failed query, as a real DuckDB error is
