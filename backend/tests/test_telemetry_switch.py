"""TELEMETRY_ENABLED (docs/observability.md): on by default; off really turns telemetry off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from api.observability import switch
from api.settings import Settings
from tests.conftest import AUTH, ReadyTestClient, copy_db, make_settings


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Every span this process finishes from now on (the provider create_app installed)."""
    create_app(make_settings(Path("unused.db")))  # makes sure the provider exists
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield spans
    spans.shutdown()
    switch.set_enabled(True)  # the switch is per process: leave it as the other tests expect


def sample(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    )


def access_lines(out: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "http.request"]


def test_default_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEMETRY_ENABLED", raising=False)
    monkeypatch.setenv("BACKEND_API_KEY", "a-development-key")
    assert Settings().telemetry_enabled is True
    monkeypatch.setenv("TELEMETRY_ENABLED", "false")
    assert Settings().telemetry_enabled is False


def test_on_records_spans_access_line_and_metrics(
    template_db: Path,
    tmp_path: Path,
    exporter: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(make_settings(copy_db(template_db, tmp_path)))
    with ReadyTestClient(app, headers=AUTH) as client:
        exporter.clear()
        capsys.readouterr()
        assert client.get("/api/v1/flights/1").status_code == 200
        names = {s.name for s in exporter.get_finished_spans()}
        assert "flight_get" in names and "GET /api/v1/flights/{flight_id}" in names
        assert len(access_lines(capsys.readouterr().out)) == 1


def test_off_records_no_span_no_access_line_no_metric(
    template_db: Path,
    tmp_path: Path,
    exporter: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(make_settings(copy_db(template_db, tmp_path), telemetry_enabled=False))
    with ReadyTestClient(app, headers=AUTH) as client:
        before = client.get("/metrics").text
        exporter.clear()
        capsys.readouterr()
        response = client.get("/api/v1/flights/1", headers={"X-Request-ID": "switch-test-1"})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == "switch-test-1"  # request ids stay
        assert client.get("/api/v1/stats/daily").status_code == 200
        assert [s.name for s in exporter.get_finished_spans()] == []  # no span at all
        assert access_lines(capsys.readouterr().out) == []
        after = client.get("/metrics")
        assert after.status_code == 200
        assert sample(after.text, "app_build_info") >= 1  # /metrics still answers
        for name, labels in (
            ("duckdb_query_duration_seconds_count", {"query": "flight_get"}),
            ("duckdb_query_duration_seconds_count", {"query": "stats_daily"}),
            (
                "http_server_request_duration_seconds_count",
                {"http_route": "/api/v1/flights/{flight_id}"},
            ),
        ):
            assert sample(after.text, name, **labels) == sample(before, name, **labels), name
