"""Observability in-process: log schema and redaction, request ids, span shapes, metrics.

Spans go to an InMemorySpanExporter added to this process's tracer provider. Metrics use the
default in-process registry (no PROMETHEUS_MULTIPROC_DIR here), so tests compare deltas. The
real-process behaviour (gunicorn workers, multiprocess totals, shutdown) is in
test_gunicorn_observability.py.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from flask import Flask
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.fake_backend import FakeBackend
from web.observability import ServiceInfo, tracing
from web.observability import logging as obs_logging
from web.observability.metrics import normalize_method

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
PROBES = ("/livez", "/readyz", "/health", "/metrics")

_exporter = InMemorySpanExporter()


@pytest.fixture
def spans(app: Flask) -> Iterator[InMemorySpanExporter]:
    """The spans finished during the test (the app fixture has set tracing up already)."""
    provider = tracing.provider()
    assert isinstance(provider, TracerProvider)
    if not getattr(provider, "_test_exporter_added", False):
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        provider._test_exporter_added = True  # type: ignore[attr-defined]
    _exporter.clear()
    yield _exporter
    _exporter.clear()


def log_records(text: str) -> list[dict[str, Any]]:
    """Every captured stdout line parsed as JSON (fails on a line that is not JSON)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def access_lines(text: str) -> list[dict[str, Any]]:
    return [r for r in log_records(text) if r.get("event") == "http.request"]


def traceparent(trace_id: str, span_id: str, sampled: bool) -> str:
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def scrape_value(client: Any, name: str, **labels: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


# -- logs ------------------------------------------------------------------------------------


def test_redaction_of_secret_fields_headers_and_text() -> None:
    event = {
        "event": "login with Authorization: Bearer abc.def and /x?token=s3cr3t&page=2",
        "password": "hunter2",
        "csrf_token": "tok",
        "METRICS_TOKEN": "m",
        "headers": {"Authorization": "Basic xyz", "Cookie": "session=1", "Accept": "text/html"},
        "response_headers": [("Set-Cookie", "session=2"), ("X-CSRFToken", "c"), ("Vary", "*")],
        "count": 3,
    }
    out = obs_logging.redact_secrets(None, "info", event)
    assert out["password"] == out["csrf_token"] == out["METRICS_TOKEN"] == "[REDACTED]"
    assert out["headers"] == {
        "Authorization": "[REDACTED]",
        "Cookie": "[REDACTED]",
        "Accept": "text/html",
    }
    assert out["response_headers"] == [
        ("Set-Cookie", "[REDACTED]"),
        ("X-CSRFToken", "[REDACTED]"),
        ("Vary", "*"),
    ]
    assert "abc.def" not in out["event"] and "s3cr3t" not in out["event"]
    assert "page=2" in out["event"]
    assert out["count"] == 3


def _formatted(record: logging.LogRecord, log_format: obs_logging.LogFormat = "json") -> str:
    info = ServiceInfo("svc-x", "9.9.9", "test")
    return obs_logging.make_formatter(info, log_format).format(record)


def test_stdlib_record_renders_the_schema_with_active_span_ids() -> None:
    record = logging.LogRecord(
        "gunicorn.error", logging.WARNING, __file__, 1, "hi %s", ("x",), None
    )
    plain = json.loads(_formatted(record))
    assert plain["event"] == "hi x"
    assert plain["level"] == "warning"
    assert plain["logger"] == "gunicorn.error"
    assert plain["service.name"] == "svc-x"
    assert plain["service.version"] == "9.9.9"
    assert plain["deployment.environment.name"] == "test"
    assert isinstance(plain["process.pid"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", plain["timestamp"])
    assert "trace_id" not in plain and "span_id" not in plain  # outside a span

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        inside = json.loads(_formatted(record))
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert HEX32.match(inside["trace_id"]) and HEX16.match(inside["span_id"])


def test_exception_stack_is_one_json_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("web", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = _formatted(record)
    assert "\n" not in line  # one line, the stack is escaped inside the JSON string
    parsed = json.loads(line)
    assert "Traceback" in parsed["exception"] and "ValueError: boom" in parsed["exception"]


def test_console_format_is_not_json() -> None:
    record = logging.LogRecord("web", logging.INFO, __file__, 1, "hello console", (), None)
    line = _formatted(record, "console")
    assert "hello console" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


# -- request ids and the access line ---------------------------------------------------------


def test_request_id_accepted_generated_rejected_and_forwarded(
    make_app: Callable[..., Flask], fake_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_app(BACKEND_URL=fake_backend.url, WTF_CSRF_ENABLED=False).test_client()

    good = "abc.DEF_123-xyz"
    response = client.get("/flights/1", headers={"X-Request-ID": good})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == good
    forwarded = fake_backend.headers_for("/api/v1/flights/1")
    assert forwarded and all(h["x-request-id"] == good for h in forwarded)

    generated = client.get("/livez").headers["X-Request-ID"]
    assert HEX32.match(generated)
    for bad in ("short", "has space inside", "x" * 129, "semi;colon-12345"):
        answer = client.get("/livez", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert answer != bad and HEX32.match(answer)

    # every response, errors included: 404, and the 503 of a failing backend
    assert HEX32.match(client.get("/no-such-page").headers["X-Request-ID"])
    fake_backend.status_override = 500
    failed = client.get("/", headers={"X-Request-ID": "outage-request-1"})
    assert failed.status_code == 503
    assert failed.headers["X-Request-ID"] == "outage-request-1"
    assert fake_backend.headers_for("/api/v1/airports")[-1]["x-request-id"] == "outage-request-1"

    # the readiness call carries the id too
    ready = client.get("/readyz", headers={"X-Request-ID": "probe-request-1"})
    assert fake_backend.headers_for("/readyz")[-1]["x-request-id"] == "probe-request-1"
    assert ready.headers["X-Request-ID"] == "probe-request-1"

    records = log_records(capsys.readouterr().out)
    assert any(
        r.get("request_id") == "outage-request-1" and r["level"] == "warning" for r in records
    )


def test_access_line_fields_and_context_cleared(
    make_app: Callable[..., Flask], fake_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_app(BACKEND_URL=fake_backend.url).test_client()
    client.get(
        "/flights/2?x=1",
        headers={"X-Request-ID": "access-line-1", "User-Agent": "probe/1.0"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    # From a trusted proxy (FORWARDED_ALLOW_IPS, default loopback) the client address comes
    # from X-Forwarded-For (tests/test_proxies_and_hosts.py: never from anyone else)
    client.get(
        "/missing",
        headers={"X-Forwarded-For": "203.0.113.9"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    client.open("/livez", method="BREW")  # a non-standard method: bounded label _OTHER
    lines = access_lines(capsys.readouterr().out)
    assert len(lines) == 3
    detail, missing, brew = lines
    assert detail["logger"] == "web.access"
    assert detail["http.request.method"] == "GET"
    assert detail["http.route"] == "/flights/<int:flight_id>"
    assert detail["url.path"] == "/flights/2"
    assert detail["http.response.status_code"] == 200
    assert isinstance(detail["duration_ms"], float) and detail["duration_ms"] > 0
    assert detail["client.address"] == "10.0.0.1"
    assert detail["user_agent.original"] == "probe/1.0"
    assert detail["request_id"] == "access-line-1"
    assert HEX32.match(detail["trace_id"]) and HEX16.match(detail["span_id"])

    assert missing["http.route"] == "unmatched"
    assert missing["http.response.status_code"] == 404
    assert missing["client.address"] == "203.0.113.9"
    assert missing["request_id"] != "access-line-1"  # context cleared between requests

    assert brew["http.request.method"] == "_OTHER"
    assert brew["http.response.status_code"] == 405
    assert structlog.contextvars.get_contextvars() == {}  # nothing left after the request


def test_normalize_method() -> None:
    assert normalize_method("get") == "GET"
    assert normalize_method("PATCH") == "PATCH"
    assert normalize_method("PROPFIND") == "_OTHER"


# -- traces ------------------------------------------------------------------------------------


def _by_kind(finished: tuple[ReadableSpan, ...], kind: trace.SpanKind) -> list[ReadableSpan]:
    return [s for s in finished if s.kind == kind]


def test_server_span_with_client_child_and_traceparent_sent(
    client: Any, fake_backend: FakeBackend, spans: InMemorySpanExporter
) -> None:
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    response = client.get(
        "/flights/1", headers={"traceparent": traceparent(trace_id, parent_id, True)}
    )
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    servers = _by_kind(finished, trace.SpanKind.SERVER)
    assert len(servers) == 1
    server = servers[0]
    assert server.name == "GET /flights/<int:flight_id>"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/flights/<int:flight_id>"
    assert format(server.context.trace_id, "032x") == trace_id
    assert server.parent is not None and format(server.parent.span_id, "016x") == parent_id

    clients = _by_kind(finished, trace.SpanKind.CLIENT)
    assert clients  # the flight and the airline names
    assert all(c.parent is not None and c.parent.span_id == server.context.span_id for c in clients)

    # the backend received a traceparent naming one of those client spans, same trace, sampled
    sent = [h["traceparent"] for h in fake_backend.headers_for("/api/v1/flights/1")]
    assert len(sent) == 1
    _, sent_trace, sent_parent, flags = sent[0].split("-")
    assert sent_trace == trace_id and flags == "01"
    assert sent_parent in {format(c.context.span_id, "016x") for c in clients}


OLD_HTTP_ATTRIBUTES = ("http.method", "http.status_code", "http.target", "http.url", "http.scheme",
                       "http.host", "net.host.port", "net.peer.name", "net.peer.port",
                       "http.server_name", "http.flavor", "http.user_agent")  # fmt: skip
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_spans_use_the_stable_http_conventions_and_client_span_names(
    client: Any, fake_backend: FakeBackend, spans: InMemorySpanExporter
) -> None:
    trace_id, parent_id = "1af7651916cd43dd8448eb211c80319c", "c7ad6b7169203331"
    response = client.get(
        "/flights/1", headers={"traceparent": traceparent(trace_id, parent_id, True)}
    )
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    (server,) = _by_kind(finished, trace.SpanKind.SERVER)
    attributes = dict(server.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.path"] == "/flights/1"
    assert not set(OLD_HTTP_ATTRIBUTES) & set(attributes), attributes
    clients = _by_kind(finished, trace.SpanKind.CLIENT)
    templates = {dict(c.attributes or {}).get("url.template") for c in clients}
    assert "/api/v1/flights/{flight_id}" in templates, templates
    for span in clients:
        attributes = dict(span.attributes or {})
        assert span.name == f"GET {attributes['url.template']}"
        assert attributes["http.request.method"] == "GET"
        assert attributes["http.response.status_code"] == 200
        assert not set(OLD_HTTP_ATTRIBUTES) & set(attributes), attributes
    resource = server.resource.attributes
    assert resource["deployment.environment.name"] == "test"
    assert "deployment.environment" not in resource
    assert UUID.match(str(resource["service.instance.id"]))


def test_a_request_without_a_route_is_named_after_its_method_only(
    client: Any, spans: InMemorySpanExporter
) -> None:
    """Regression: the WSGI default named it `GET /<raw path>` (unbounded span names)."""
    trace_id = "2af7651916cd43dd8448eb211c80319c"
    response = client.get(
        "/no/such/page/42", headers={"traceparent": traceparent(trace_id, "d7ad6b7169203331", True)}
    )
    assert response.status_code == 404
    (server,) = _by_kind(spans.get_finished_spans(), trace.SpanKind.SERVER)
    assert server.name == "GET"
    assert "http.route" not in (server.attributes or {})


def test_server_span_attributes_of_host_query_method_and_client(
    client: Any, spans: InMemorySpanExporter
) -> None:
    """The server span's request attributes (web/observability/instrumentation.py).
    Regression: opentelemetry-instrumentation-flask took the Host header whole as
    `server.address` (`localhost:8443`) and the socket's port as `server.port`."""
    headers = {"Host": "localhost:8443", "User-Agent": "agent/1.0"}
    assert client.get("/?origin=JFK&sig=secret-value", headers=headers).status_code == 200
    assert client.open("/", method="BREW", headers=headers).status_code == 405
    get, brew = _by_kind(spans.get_finished_spans(), trace.SpanKind.SERVER)
    attributes = dict(get.attributes or {})
    assert get.name == "GET /"
    assert attributes["server.address"] == "localhost" and attributes["server.port"] == 8443
    assert attributes["url.query"] == "origin=JFK&sig=REDACTED"
    assert attributes["url.scheme"] == "http" and attributes["network.protocol.version"] == "1.1"
    assert attributes["client.address"] == "127.0.0.1"
    assert attributes["user_agent.original"] == "agent/1.0"
    assert attributes["http.route"] == "/" and attributes["http.response.status_code"] == 200
    assert get.status.status_code == trace.StatusCode.UNSET
    assert get.instrumentation_scope is not None and get.instrumentation_scope.name == "web"
    brew_attributes = dict(brew.attributes or {})
    assert brew.name == "HTTP"
    assert brew_attributes["http.request.method"] == "_OTHER"
    assert brew_attributes["http.request.method_original"] == "BREW"
    assert brew_attributes["http.response.status_code"] == 405
    assert "error.type" not in brew_attributes


def test_an_unhandled_exception_is_an_error_span_around_its_log_lines(
    make_app: Callable[..., Flask],
    fake_backend: FakeBackend,
    spans: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = make_app(BACKEND_URL=fake_backend.url)

    @app.get("/test-only/boom")
    def boom() -> None:
        raise RuntimeError("kaboom in a span")

    capsys.readouterr()
    assert app.test_client().get("/test-only/boom").status_code == 500
    (server,) = _by_kind(spans.get_finished_spans(), trace.SpanKind.SERVER)
    attributes = dict(server.attributes or {})
    assert attributes["http.response.status_code"] == 500
    assert attributes["error.type"] == "RuntimeError"
    assert server.status.status_code == trace.StatusCode.ERROR
    (event,) = server.events
    assert event.name == "exception"
    assert "kaboom" in str((event.attributes or {}).get("exception.message"))
    # Flask's error line and the access line were written inside the span
    lines = log_records(capsys.readouterr().out)
    error = next(r for r in lines if "kaboom in a span" in json.dumps(r))
    (access,) = [r for r in lines if r.get("event") == "http.request"]
    span_id = format(server.context.span_id, "016x")
    assert error["span_id"] == span_id and access["span_id"] == span_id


def test_a_backend_outage_is_a_5xx_error_span_without_an_exception_event(
    make_app: Callable[..., Flask], spans: InMemorySpanExporter
) -> None:
    client = make_app(BACKEND_URL=f"http://127.0.0.1:{free_port()}").test_client()
    assert client.get("/flights/1").status_code == 503
    (server,) = _by_kind(spans.get_finished_spans(), trace.SpanKind.SERVER)
    attributes = dict(server.attributes or {})
    assert attributes["http.response.status_code"] == 503 and attributes["error.type"] == "503"
    assert server.status.status_code == trace.StatusCode.ERROR
    assert server.events == ()


def test_unsampled_parent_records_nothing_but_logs_correlate(
    make_app: Callable[..., Flask],
    fake_backend: FakeBackend,
    spans: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = make_app(BACKEND_URL=fake_backend.url).test_client()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    client.get(
        "/flights/3", headers={"traceparent": traceparent(trace_id, "00f067aa0ba902b7", False)}
    )
    assert spans.get_finished_spans() == ()
    assert fake_backend.headers_for("/api/v1/flights/3")[0]["traceparent"].endswith("-00")
    (line,) = access_lines(capsys.readouterr().out)
    assert line["trace_id"] == trace_id


def test_probes_and_scrapes_are_not_traced(
    client: Any, fake_backend: FakeBackend, spans: InMemorySpanExporter
) -> None:
    for path in PROBES:
        header = traceparent("5" * 32, "6" * 16, True)
        assert client.get(path, headers={"traceparent": header}).status_code == 200
        assert client.get(path).status_code == 200
    # nothing at all: no server spans, and no orphan client spans for the backend's /readyz
    assert spans.get_finished_spans() == ()
    assert all("traceparent" not in h for h in fake_backend.headers_for("/readyz"))
    # ...while a normal page still is traced (the exclusion is by path, not substring)
    client.get("/flights?origin=healthy-metrics")
    assert _by_kind(spans.get_finished_spans(), trace.SpanKind.SERVER)


# -- metrics -----------------------------------------------------------------------------------


def test_metrics_token(make_app: Callable[..., Flask], fake_backend: FakeBackend) -> None:
    client = make_app(BACKEND_URL=fake_backend.url, METRICS_TOKEN="s3cret-metrics").test_client()
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    for wrong in ("Bearer nope", "Basic s3cret-metrics", "s3cret-metrics", "Bearer "):
        assert client.get("/metrics", headers={"Authorization": wrong}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
    assert ok.status_code == 200
    assert "http_server_request_duration_seconds" in ok.get_data(as_text=True)


def test_metrics_open_without_token_and_openmetrics_negotiation(client: Any) -> None:
    plain = client.get("/metrics")
    assert plain.status_code == 200
    assert plain.headers["Content-Type"].startswith("text/plain")
    om = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.get_data(as_text=True).rstrip().endswith("# EOF")


def test_http_and_backend_metrics_labels(client: Any, fake_backend: FakeBackend) -> None:
    route = "/flights/<int:flight_id>"
    name = "http_server_request_duration_seconds_count"
    before = scrape_value(client, name, http_route=route, http_response_status_code="200")
    before_unmatched = scrape_value(client, name, http_route="unmatched")
    backend_name = "backend_request_duration_seconds_count"
    flight_route = "/api/v1/flights/{flight_id}"
    ok_before = scrape_value(client, backend_name, http_route=flight_route, outcome="ok")
    missing_before = scrape_value(
        client, backend_name, http_route=flight_route, outcome="client_error"
    )
    for flight_id in (1, 2, 3):
        client.get(f"/flights/{flight_id}")
    assert client.get("/flights/999").status_code == 404  # backend 404 -> client_error
    client.get("/no/such/path")
    client.get("/another/unknown")
    after = scrape_value(client, name, http_route=route, http_response_status_code="200")
    assert after - before == 3
    assert scrape_value(client, name, http_route="unmatched") - before_unmatched == 2
    assert (
        scrape_value(client, backend_name, http_route=flight_route, outcome="ok") - ok_before == 3
    )
    missing = scrape_value(client, backend_name, http_route=flight_route, outcome="client_error")
    assert missing - missing_before == 1
    text = client.get("/metrics").get_data(as_text=True)
    assert "/api/v1/flights/1" not in text  # raw paths never become label values
    assert 'app_build_info{git_commit="' in text


def test_backend_outcomes_server_error_and_unavailable(
    make_app: Callable[..., Flask], fake_backend: FakeBackend
) -> None:
    client = make_app(BACKEND_URL=fake_backend.url).test_client()
    name = "backend_request_duration_seconds_count"
    route = "/api/v1/airports"
    before = scrape_value(client, name, http_route=route, outcome="server_error")
    fake_backend.status_override = 500
    assert client.get("/").status_code == 503
    assert scrape_value(client, name, http_route=route, outcome="server_error") - before == 1

    down = make_app(BACKEND_URL=f"http://127.0.0.1:{free_port()}").test_client()
    before = scrape_value(down, name, http_route=route, outcome="unavailable")
    assert down.get("/").status_code == 503
    assert scrape_value(down, name, http_route=route, outcome="unavailable") - before == 1


def test_promtool_finds_nothing(client: Any) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    for path in ("/", "/flights/1", "/nope", "/readyz"):
        client.get(path)
    text = client.get("/metrics").get_data(as_text=True)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""
