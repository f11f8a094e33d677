"""TELEMETRY_ENABLED (docs/observability.md): on by default; off really turns telemetry off."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from tests.fake_backend import FakeBackend
from web.observability import tracing
from web.settings import Settings


def scrape(client: Any, name: str, **labels: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    )


def access_lines(out: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [r for r in records if r.get("event") == "http.request"]


def test_default_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEMETRY_ENABLED", raising=False)
    assert Settings().TELEMETRY_ENABLED is True
    monkeypatch.setenv("TELEMETRY_ENABLED", "false")
    assert Settings().TELEMETRY_ENABLED is False


@pytest.mark.parametrize("enabled", [True, False])
def test_switch(
    enabled: bool,
    app: Flask,  # a telemetry-on app first: the process's tracer provider exists
    make_app: Callable[..., Flask],
    fake_backend: FakeBackend,
    capsys: pytest.CaptureFixture[str],
) -> None:
    provider = tracing.provider()
    assert isinstance(provider, TracerProvider)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    client = make_app(
        BACKEND_URL=fake_backend.url, WTF_CSRF_ENABLED=False, TELEMETRY_ENABLED=enabled
    ).test_client()
    route, backend_route = "/flights/<int:flight_id>", "/api/v1/flights/{flight_id}"
    http_before = scrape(client, "http_server_request_duration_seconds_count", http_route=route)
    backend_before = scrape(
        client, "backend_request_duration_seconds_count", http_route=backend_route
    )
    capsys.readouterr()

    response = client.get("/flights/1", headers={"X-Request-ID": "switch-test-1"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "switch-test-1"  # request ids stay either way
    (sent,) = fake_backend.headers_for("/api/v1/flights/1")
    assert sent["x-request-id"] == "switch-test-1"

    lines = access_lines(capsys.readouterr().out)
    http_after = scrape(client, "http_server_request_duration_seconds_count", http_route=route)
    backend_after = scrape(
        client, "backend_request_duration_seconds_count", http_route=backend_route
    )
    names = [s.name for s in spans.get_finished_spans()]
    spans.shutdown()
    assert scrape(client, "app_build_info") >= 1  # /metrics answers either way
    if enabled:
        assert "traceparent" in sent
        assert len(lines) == 1 and names  # a server span and the backend call's client span
        assert (http_after - http_before, backend_after - backend_before) == (1, 1)
    else:
        assert "traceparent" not in sent
        assert lines == [] and names == []
        assert (http_after - http_before, backend_after - backend_before) == (0, 0)
