"""Telemetry of the backend (docs/observability.md): JSON logs, request ids, spans, metrics.

Spans are read with the SDK's InMemorySpanExporter attached to the process's real tracer
provider (set up by create_app); logs are read from stdout (capsys, or a real server
process); metrics from GET /metrics, checked by a real promtool.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from api.db.database import run_query
from api.main import create_app
from api.observability import logging as obs_logging
from api.observability.instrumentation import _ASGIHeaders, server_attributes
from api.observability.logging import REDACTED, redact_secrets
from tests.conftest import API_KEY, AUTH, ReadyTestClient, copy_db, make_settings
from tests.test_server_process import free_port, start, wait_ready

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
SCHEMA = (
    "timestamp",
    "level",
    "event",
    "logger",
    "service.name",
    "service.version",
    "deployment.environment.name",
    "process.pid",
)
ACCESS_FIELDS = (
    "http.request.method",
    "http.route",
    "url.path",
    "http.response.status_code",
    "duration_ms",
    "client.address",
    "user_agent.original",
)
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def parse_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line as a JSON object; fails on the first line that is not one."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"line {number} is not JSON: {line[:300]}")
        assert isinstance(record, dict), line
        records.append(record)
    return records


def access_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("event") == "http.request"]


def traceparent(sampled: bool = True) -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-{'01' if sampled else '00'}", trace_id


def sample_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels` (classic format)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of this process, via the real provider that create_app installed."""
    exporter = InMemorySpanExporter()
    create_app(make_settings(Path("unused.db")))  # makes sure the provider exists
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), "tracing was not set up by create_app"
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # stops keeping spans (a provider cannot drop a processor)


@pytest.fixture
def api(template_db: Path, tmp_path: Path, spans: InMemorySpanExporter) -> Iterator[TestClient]:
    """A client over this test's copy of the demo database, spans cleared."""
    app = create_app(make_settings(copy_db(template_db, tmp_path)))
    with ReadyTestClient(app, headers=AUTH) as client:
        spans.clear()
        yield client


def server_span(spans: InMemorySpanExporter, trace_id: str) -> ReadableSpan:
    found = [
        s
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.SERVER and format(s.context.trace_id, "032x") == trace_id
    ]
    assert len(found) == 1, found
    return found[0]


# --- logs ------------------------------------------------------------------------------------


def test_every_stdout_line_of_a_real_server_is_json(template_db: Path, tmp_path: Path) -> None:
    db = copy_db(template_db, tmp_path)
    port = free_port()
    log = tmp_path / "server.log"
    server = start(db, port, log, LOG_FORMAT="json", APP_ENV="development")
    header, trace_id = traceparent()
    try:
        wait_ready(port, server)
        base = f"http://127.0.0.1:{port}"
        calls = [
            (
                f"{base}/api/v1/flights/1",
                {"traceparent": header, "X-Request-ID": "req-00000001", **AUTH},
            ),
            (f"{base}/no-such-path", {}),
            (f"{base}/api/v1/flights?limit=abc", AUTH),
            (f"{base}/api/v1/flights/1", {"Authorization": "Bearer do-not-log-me"}),
        ]
        statuses = []
        for url, headers in calls:
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
                    statuses.append(r.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert statuses == [200, 404, 422, 401]
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()

    text = log.read_text()
    records = parse_lines(text)
    events = [r["event"] for r in records]
    assert any(e.startswith("Started server process") for e in events)  # uvicorn start-up
    assert "Application shutdown complete." in events  # uvicorn shutdown
    assert "database.closed" in events  # our own structlog event
    for record in records:
        for key in SCHEMA:
            assert key in record, record
        assert record["service.name"] == "flights-backend"
        assert record["deployment.environment.name"] == "development"
        assert record["timestamp"].endswith("Z")
        assert record["level"] == record["level"].lower()
        assert record["process.pid"] == server.pid
        if "trace_id" in record:
            assert HEX32.match(record["trace_id"]) and HEX16.match(record["span_id"]), record
    access = access_lines(records)
    # one access line per request (lines may interleave: a response is sent before the
    # request's dependencies are cleaned up, so the next request can finish first)
    statuses = sorted(a["http.response.status_code"] for a in access if a["url.path"] != "/readyz")
    assert statuses == [200, 401, 404, 422]
    traced = next(a for a in access if a.get("request_id") == "req-00000001")
    assert traced["trace_id"] == trace_id  # the caller's trace continues here
    assert traced["http.route"] == "/api/v1/flights/{flight_id}"
    assert "do-not-log-me" not in text and API_KEY not in text
    assert not any(r["logger"] == "uvicorn.access" for r in records)


def test_unhandled_error_is_one_json_line_with_the_stack(
    template_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(copy_db(template_db, tmp_path)))

    @app.get("/test-only/boom")
    def boom() -> None:
        raise RuntimeError("kaboom for the test")

    with ReadyTestClient(app, raise_server_exceptions=False, headers=AUTH) as client:
        capsys.readouterr()
        response = client.get("/test-only/boom", headers={"X-Request-ID": "boom-request-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["X-Request-ID"] == "boom-request-1"
    assert "kaboom" not in response.text

    records = parse_lines(capsys.readouterr().out)
    error = next(r for r in records if r["event"] == "http.unhandled_error")
    assert error["level"] == "error"
    assert "Traceback" in error["exception"] and "kaboom for the test" in error["exception"]
    assert error["request_id"] == "boom-request-1"
    assert HEX32.match(error["trace_id"])
    (access,) = access_lines(records)
    assert access["http.response.status_code"] == 500
    assert access["http.route"] == "/test-only/boom"
    # Both lines belong to the request's server span, though the error handler runs after
    # the middleware ended it (Starlette's error middleware is outside ours).
    assert (error["trace_id"], error["span_id"]) == (access["trace_id"], access["span_id"])


@pytest.mark.parametrize("pad", [3000, 6000])  # below and above PIPE_BUF (4096 on Linux)
def test_access_lines_of_many_threads_stay_whole_on_a_slow_pipe(pad: int) -> None:
    """The access lines are written in batches by a writer thread (logging.py,
    `_StdoutLines`): lines of concurrent threads must still arrive whole, all and in order
    on a pipe, as a container's stdout is, also when the reader is slow (a full pipe lets
    another writer in mid-write) and a line is longer than what a pipe keeps whole; the
    last line, still waiting when the process exits, is written at exit."""
    script = """
import sys, threading
from api.observability.identity import ServiceInfo
from api.observability.logging import access_logger, configure_logging
configure_logging(ServiceInfo("t", "1", "test"))
def work(n):
    for i in range(1000):
        access_logger().info("http.request", thread=n, i=i, pad="x" * int(sys.argv[1]))
threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join()
access_logger().info("http.request", thread=-1, i=-1)
"""
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(pad)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdout is not None
    chunks = []
    while chunk := writer.stdout.read(1500):  # small reads: the pipe stays full
        chunks.append(chunk)
    assert writer.wait(timeout=120) == 0, writer.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
    lines = [json.loads(line) for line in b"".join(chunks).splitlines()]
    access = [line for line in lines if line.get("event") == "http.request"]
    assert {(line["thread"], line["i"]) for line in access} == {
        (n, i) for n in range(8) for i in range(1000)
    } | {(-1, -1)}
    assert len(access) == 8 * 1000 + 1
    # each thread's lines in the order it wrote them
    for n in range(8):
        assert [line["i"] for line in access if line["thread"] == n] == list(range(1000))


def _pipe_as_stdout(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[int]]:
    """sys.stdout made the write end of a pipe; returns a function reading the `n` field of
    every line written since it was last called."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    monkeypatch.setattr(sys, "stdout", os.fdopen(write_fd, "w"))

    def written() -> list[int]:
        data = b""
        while True:
            try:
                chunk = os.read(read_fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        return [json.loads(line)["n"] for line in data.splitlines()]

    return written


def test_access_lines_go_out_from_the_writer_thread_a_burst_or_a_flush(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`_StdoutLines`: a line waits for the writer thread (every `FLUSH_SECONDS`), unless
    `MAX_PENDING` lines wait (then the thread that added the last writes them all) or
    `flush` is called; always in order."""
    written = _pipe_as_stdout(monkeypatch)
    slow = obs_logging._StdoutLines("test.access")
    slow.FLUSH_SECONDS = 3600.0  # its writer thread sleeps through this test
    for n in range(slow.MAX_PENDING - 1):
        slow.msg(b'{"n": %d}' % n)
    assert written() == []
    slow.msg(b'{"n": %d}' % (slow.MAX_PENDING - 1))
    assert written() == list(range(slow.MAX_PENDING))
    slow.msg(b'{"n": 1000}')
    slow.msg(b'{"n": 1001}')
    assert written() == []
    slow.flush()
    assert written() == [1000, 1001]

    fast = obs_logging._StdoutLines("test.access")
    fast.FLUSH_SECONDS = 0.01
    fast.msg(b'{"n": 7}')
    seen: list[int] = []
    for _ in range(500):  # up to 5 s on a busy machine
        seen += written()
        if seen:
            break
        time.sleep(0.01)
    assert seen == [7]


def test_a_flush_waits_for_the_write_in_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: `flush` returned at once when the writer thread had taken the last lines
    off the queue but not yet written them, so at exit they were lost."""
    written = _pipe_as_stdout(monkeypatch)
    write_all = obs_logging._write_all
    writing, proceed = threading.Event(), threading.Event()

    def held_write_all(*args: Any) -> None:
        writing.set()
        proceed.wait(10)
        write_all(*args)

    monkeypatch.setattr(obs_logging, "_write_all", held_write_all)
    lines = obs_logging._StdoutLines("test.access")
    lines.FLUSH_SECONDS = 0.01
    lines.msg(b'{"n": 1}')
    assert writing.wait(10)  # the writer thread has taken the line and is writing it
    flusher = threading.Thread(target=lines.flush)
    flusher.start()
    flusher.join(timeout=0.2)
    assert flusher.is_alive()  # the flush waits for that write...
    proceed.set()
    flusher.join(timeout=10)
    assert written() == [1]  # ...and returns once the line is out


def test_waiting_lines_go_to_the_stream_they_were_logged_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: lines logged under one `sys.stdout` were written to the next (a test's
    access line in the following test's captured output)."""
    first = _pipe_as_stdout(monkeypatch)
    lines = obs_logging._StdoutLines("test.access")
    lines.FLUSH_SECONDS = 3600.0
    lines.msg(b'{"n": 1}')
    second = _pipe_as_stdout(monkeypatch)
    lines.msg(b'{"n": 2}')
    assert first() == [1]
    lines.flush()
    assert second() == [2]


def test_the_queue_is_bounded_while_stdout_does_not_drain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the writer stuck in a write (a log reader that stopped reading), a request
    thread waits once `MAX_QUEUED` lines wait, instead of filling the memory."""
    written = _pipe_as_stdout(monkeypatch)
    lines = obs_logging._StdoutLines("test.access")
    lines.FLUSH_SECONDS = 3600.0
    total = lines.MAX_QUEUED + 10
    lines.msg(b'{"n": 0}')  # (the first line also notes the stream)
    lines._writing.acquire()  # the write in progress that does not end

    def log() -> None:
        for n in range(1, total):
            lines.msg(b'{"n": %d}' % n)

    logger = threading.Thread(target=log, daemon=True)
    logger.start()
    for _ in range(1000):  # up to 10 s on a busy machine
        if len(lines._pending) >= lines.MAX_QUEUED:
            break
        time.sleep(0.01)
    logger.join(timeout=0.2)
    assert logger.is_alive() and len(lines._pending) == lines.MAX_QUEUED
    lines._writing.release()
    logger.join(timeout=10)
    lines.flush()
    assert written() == list(range(total))


def test_a_failing_stdout_loses_lines_not_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # every write now fails with EPIPE (SIGPIPE is ignored by Python)
    monkeypatch.setattr(sys, "stdout", os.fdopen(write_fd, "w"))
    lines = obs_logging._StdoutLines("test.access")
    lines.FLUSH_SECONDS = 3600.0
    for n in range(lines.MAX_QUEUED + 1):  # a burst, and the wait for it
        lines.msg(b'{"n": %d}' % n)
    lines.flush()
    assert not lines._pending


def test_console_format_is_for_humans(
    template_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(copy_db(template_db, tmp_path), log_format="console"))
    try:
        with ReadyTestClient(app, headers=AUTH) as client:
            capsys.readouterr()
            client.get("/livez")
        out = capsys.readouterr().out
        assert "http.request" in out and not out.lstrip().startswith("{")
    finally:
        create_app(make_settings(copy_db(template_db, tmp_path)))  # back to JSON


def test_redaction_of_secrets() -> None:
    event = {
        "event": "x",
        "Authorization": "Bearer abc",
        "db_password": "pw",
        "csrf_token": "t",
        "headers": {"Cookie": "session=1", "Set-Cookie": "a=b", "Accept": "*/*"},
        "user": "alice",
    }
    out = redact_secrets(None, "info", event)
    assert out["Authorization"] == out["db_password"] == out["csrf_token"] == REDACTED
    assert out["headers"] == {"Cookie": REDACTED, "Set-Cookie": REDACTED, "Accept": "*/*"}
    assert out["user"] == "alice"


# --- request ids and the access line ----------------------------------------------------------


def test_request_id_accepted_generated_and_rejected(
    api: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    given = api.get("/livez", headers={"X-Request-ID": "abc.DEF_123-xyz"})
    assert given.headers["X-Request-ID"] == "abc.DEF_123-xyz"
    generated = api.get("/livez")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
    for bad in ("short", "has space in it", "x" * 129, "semi;colon-1234"):
        answer = api.get("/livez", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"]), bad
    missing = api.get("/no-such-path", headers={"X-Request-ID": "for-the-404"})
    assert (missing.status_code, missing.headers["X-Request-ID"]) == (404, "for-the-404")
    invalid = api.get("/api/v1/flights?limit=abc", headers={"X-Request-ID": "for-the-422"})
    assert (invalid.status_code, invalid.headers["X-Request-ID"]) == (422, "for-the-422")

    records = access_lines(parse_lines(capsys.readouterr().out))
    logged = [r["request_id"] for r in records]
    assert logged[0] == "abc.DEF_123-xyz" and logged[-2:] == ["for-the-404", "for-the-422"]
    assert len(set(logged)) == len(logged)  # context cleared between requests


def test_access_line_fields_and_trace_ids(
    api: TestClient, spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    header, trace_id = traceparent()
    capsys.readouterr()
    response = api.get(
        "/api/v1/flights/1", headers={"traceparent": header, "User-Agent": "obs-test/1.0"}
    )
    assert response.status_code == 200
    (access,) = access_lines(parse_lines(capsys.readouterr().out))
    assert access["logger"] == "api.access" and access["level"] == "info"
    for key in ACCESS_FIELDS:
        assert key in access, key
    assert access["http.request.method"] == "GET"
    assert access["http.route"] == "/api/v1/flights/{flight_id}"
    assert access["url.path"] == "/api/v1/flights/1"
    assert access["http.response.status_code"] == 200
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] > 0
    assert access["user_agent.original"] == "obs-test/1.0"
    assert access["client.address"] == "testclient"
    # exactly the ids of the server span that was current when the line was written
    span = server_span(spans, trace_id)
    assert access["trace_id"] == trace_id == format(span.context.trace_id, "032x")
    assert access["span_id"] == format(span.context.span_id, "016x")


def test_unknown_path_and_odd_method_labels(api: TestClient) -> None:
    api.get("/no/such/thing/42")
    api.request("BREW", "/livez")
    text = api.get("/metrics").text
    name = "http_server_request_duration_seconds_count"
    assert sample_value(text, name, http_route="unmatched", http_response_status_code="404") >= 1
    assert sample_value(text, name, http_request_method="_OTHER", http_route="/livez") >= 1
    assert 'http_route="/no/such/thing/42"' not in text
    # the request being served right now is the only active one
    assert sample_value(text, "http_server_active_requests", http_route="/metrics") == 1


# --- spans -----------------------------------------------------------------------------------


def test_duckdb_spans_hang_below_the_server_span(
    api: TestClient, spans: InMemorySpanExporter
) -> None:
    # The detail's reference tables are read once and kept (api/routes/flights.py): read them
    # first, so the traced request runs the point lookup alone.
    assert api.get("/api/v1/flights/2").status_code == 200
    spans.clear()
    header, trace_id = traceparent()
    assert api.get("/api/v1/flights/1", headers={"traceparent": header}).status_code == 200
    server = server_span(spans, trace_id)
    assert server.name == "GET /api/v1/flights/{flight_id}"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/api/v1/flights/{flight_id}"
    db_spans = [
        s
        for s in spans.get_finished_spans()
        if s.attributes and s.attributes.get("db.system.name") == "duckdb"
    ]
    assert [s.name for s in db_spans] == ["flight_get"]
    (db,) = db_spans
    assert db.kind == SpanKind.CLIENT
    assert db.parent is not None and db.parent.span_id == server.context.span_id
    assert db.context.trace_id == server.context.trace_id
    assert dict(db.attributes or {}) == {
        "db.system.name": "duckdb",
        "db.operation.name": "SELECT",
        "db.query.summary": "flight_get",
        "db.response.returned_rows": 1,
    }
    # only the server span and the query: no internal receive/send spans
    mine = [s for s in spans.get_finished_spans() if s.context.trace_id == int(trace_id, 16)]
    assert sorted(s.kind.name for s in mine) == ["CLIENT", "SERVER"]


def test_server_span_attributes(
    template_db: Path, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    """The middleware's server span (api/observability/instrumentation.py): the HTTP
    attributes, the client and user agent; the route of a request the API key middleware
    refused before routing; an exception event and ERROR status on a 500."""
    app = create_app(make_settings(copy_db(template_db, tmp_path)))

    @app.get("/test-only/boom")
    def boom() -> None:
        raise RuntimeError("kaboom for the test")

    with ReadyTestClient(app, raise_server_exceptions=False) as client:
        spans.clear()
        header, ok = traceparent()
        agent = {"User-Agent": "span-test/1.0", "traceparent": header}
        # Not {**AUTH, ...}: Starlette's TestClient adds "user-agent" to the dict it is given
        # (the `api` fixture's), and a second User-Agent header would come first.
        key = {"Authorization": f"Bearer {API_KEY}"}
        assert client.get("/api/v1/flights/1", headers={**key, **agent}).status_code == 200
        _, refused = traceparent()
        no_key = {"User-Agent": "span-test/1.0", "traceparent": f"00-{refused}-{'1' * 16}-01"}
        assert client.get("/api/v1/flights", headers=no_key).status_code == 401
        _, failed = traceparent()
        boom_headers = {**key, "traceparent": f"00-{failed}-{'2' * 16}-01"}
        assert client.get("/test-only/boom", headers=boom_headers).status_code == 500
    span = server_span(spans, ok)
    assert span.name == "GET /api/v1/flights/{flight_id}"
    attributes = dict(span.attributes or {})
    assert attributes["user_agent.original"] == "span-test/1.0"
    assert attributes["client.address"] == "testclient" and "client.port" in attributes
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.path"] == "/api/v1/flights/1" and attributes["url.scheme"] == "http"
    assert span.parent is not None and format(span.parent.span_id, "016x") == header[36:52]
    # No route was selected (the key middleware answered first): the middleware's match.
    span = server_span(spans, refused)
    assert span.name == "GET /api/v1/flights"
    assert span.attributes is not None and span.attributes["http.route"] == "/api/v1/flights"
    assert span.attributes["http.response.status_code"] == 401
    span = server_span(spans, failed)
    assert span.name == "GET /test-only/boom" and span.status.status_code == StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "RuntimeError"
    assert span.attributes["user_agent.original"]  # enriched on the exception path too
    assert [e.name for e in span.events] == ["exception"]


def test_server_span_query_method_and_unmatched_names(
    api: TestClient, spans: InMemorySpanExporter
) -> None:
    """`url.query` as sent, sensitive values redacted; a non-standard method is `_OTHER` with
    the original kept and the span named `HTTP ...`; no route: the method alone (semconv)."""
    spans.clear()
    header, plain = traceparent()
    api.get("/api/v1/flights?origin=JFK&carrier=", headers={"traceparent": header})
    header, signed = traceparent()
    api.get("/api/v1/flights?origin=JFK&sig=s3cret&x=1", headers={"traceparent": header})
    header, encoded = traceparent()
    api.get("/api/v1/flights?origin=JFK&%73ig=s3cret", headers={"traceparent": header})
    header, as_sent = traceparent()
    api.get("/api/v1/flights?origin=J%46K&design=1", headers={"traceparent": header})
    header, odd = traceparent()
    api.request("BREW", "/api/v1/flights", headers={"traceparent": header})
    header, lost = traceparent()
    api.get("/no/such/thing/42", headers={"traceparent": header})
    attributes = dict(server_span(spans, plain).attributes or {})
    assert attributes["url.query"] == "origin=JFK&carrier="
    assert attributes["server.address"] == "testserver" and attributes["server.port"] == 80
    attributes = dict(server_span(spans, signed).attributes or {})
    assert attributes["url.query"] == "origin=JFK&sig=REDACTED&x=1"
    attributes = dict(server_span(spans, encoded).attributes or {})
    assert attributes["url.query"] == "origin=JFK&sig=REDACTED"  # a name percent-encoded
    attributes = dict(server_span(spans, as_sent).attributes or {})
    assert attributes["url.query"] == "origin=J%46K&design=1"  # nothing to redact: as sent
    span = server_span(spans, odd)
    assert span.name == "HTTP /api/v1/flights"
    assert span.attributes is not None and span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "BREW"
    span = server_span(spans, lost)
    assert span.name == "GET" and span.attributes is not None
    assert "http.route" not in span.attributes
    assert span.attributes["http.response.status_code"] == 404
    assert span.status.status_code == StatusCode.UNSET  # a 4xx is the client's error


@pytest.mark.parametrize(
    ("host", "scheme", "expected"),
    [
        (b"example.com", "https", {"server.address": "example.com", "server.port": 443}),
        (b"[::1]:12015", "http", {"server.address": "::1", "server.port": 12015}),
        (b"user@example.com", "http", {}),  # not an authority a client may send
        (b"example.com:99999", "http", {}),  # port out of range: urlsplit raises
        (None, "http", {"server.address": "10.0.0.5", "server.port": 12015}),
    ],
)
def test_server_address_from_the_host_header(
    host: bytes | None, scheme: str, expected: dict[str, Any]
) -> None:
    headers = [(b"host", host)] if host is not None else []
    scope = {"headers": headers, "scheme": scheme, "server": ("10.0.0.5", 12015)}
    assert server_attributes(scope) == expected


def test_propagation_headers_read_from_the_asgi_scope() -> None:
    """Every value of a repeated header; `baggage`'s joined (its propagator reads one)."""
    headers = [
        (b"tracestate", b"a=1"),
        (b"baggage", b"k1=v1"),
        (b"tracestate", b"b=2"),
        (b"baggage", b"k2=v2"),
    ]
    getter = _ASGIHeaders()
    assert getter.get(headers, "tracestate") == ["a=1", "b=2"]
    assert getter.get(headers, "baggage") == ["k1=v1,k2=v2"]
    assert getter.get(headers, "traceparent") is None
    assert getter.keys(headers) == ["tracestate", "baggage", "tracestate", "baggage"]


def test_failing_query_gives_an_error_span_and_outcome(
    api: TestClient, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    before = api.get("/metrics").text
    with duckdb.connect(str(tmp_path / "scratch.db")) as con, pytest.raises(duckdb.Error):
        run_query(con, "migration", sql="SELECT * FROM no_such_table")
    (span,) = [s for s in spans.get_finished_spans() if s.name == "migration"]
    assert span.status.status_code == StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert span.attributes is not None and span.attributes["db.operation.name"] == "SELECT"
    # semconv: error.type is the exception's class name on a failed operation
    assert span.attributes["error.type"] == "CatalogException"
    after = api.get("/metrics").text
    name = "duckdb_query_duration_seconds_count"
    rise = sample_value(after, name, query="migration", outcome="error") - sample_value(
        before, name, query="migration", outcome="error"
    )
    assert rise == 1


def test_resource_uses_the_current_conventions(spans: InMemorySpanExporter) -> None:
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    resource = provider.resource.attributes
    assert resource["deployment.environment.name"] == "development"
    assert "deployment.environment" not in resource
    # a canonical UUID string (8-4-4-4-12 lowercase hex), as semconv recommends
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        str(resource["service.instance.id"]),
    )


def test_probes_and_metrics_are_not_traced(api: TestClient, spans: InMemorySpanExporter) -> None:
    for path in ("/livez", "/readyz", "/health", "/metrics"):
        header, _ = traceparent()
        assert api.get(path, headers={"traceparent": header}).status_code == 200
    assert spans.get_finished_spans() == ()  # not even the readiness query


def test_unsampled_request_keeps_the_trace_id_in_logs(
    api: TestClient, spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    header, trace_id = traceparent(sampled=False)
    capsys.readouterr()
    api.get("/api/v1/flights/2", headers={"traceparent": header})
    (access,) = access_lines(parse_lines(capsys.readouterr().out))
    assert access["trace_id"] == trace_id
    assert spans.get_finished_spans() == ()


# --- metrics ---------------------------------------------------------------------------------


def test_query_histogram_counts_exactly_the_queries(
    api: TestClient, spans: InMemorySpanExporter
) -> None:
    before = api.get("/metrics").text
    spans.clear()
    for path in (
        "/api/v1/flights?origin=JFK&limit=5",
        "/api/v1/flights/3",
        "/api/v1/stats/carriers",
    ):
        assert api.get(path).status_code == 200
    queries = [
        s
        for s in spans.get_finished_spans()
        if s.attributes and s.attributes.get("db.system.name") == "duckdb"
    ]
    after = api.get("/metrics").text
    name = "duckdb_query_duration_seconds_count"
    assert sample_value(after, name) - sample_value(before, name) == len(queries) >= 3
    rows = sample_value(after, "duckdb_query_returned_rows_total", query="flight_get")
    assert rows - sample_value(before, "duckdb_query_returned_rows_total", query="flight_get") == 1


def test_database_gauges_and_build_info(api: TestClient) -> None:
    text = api.get("/metrics").text
    assert sample_value(text, "duckdb_database_size_bytes") > 1_000_000
    assert "duckdb_wal_size_bytes" in text
    assert (
        sample_value(text, "app_build_info", service_name="flights-backend", version="0.1.0") == 1
    )


def test_promtool_finds_nothing_and_openmetrics_is_valid(api: TestClient) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: install Debian's prometheus package"
    header, _ = traceparent()
    api.get("/api/v1/flights/1", headers={"traceparent": header})
    classic = api.get("/metrics")
    assert classic.headers["content-type"].startswith("text/plain; version=0.0.4")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=classic.text, capture_output=True, text=True
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result
    assert "# {" not in classic.text  # exemplars only in OpenMetrics

    # promtool (2.42) parses only the classic format (it stops at the first exemplar), so the
    # OpenMetrics answer is checked by prometheus-client's strict OpenMetrics parser instead.
    openmetrics = api.get("/metrics", headers=OPENMETRICS)
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
    families = {f.name for f in parse_openmetrics(openmetrics.text)}
    assert {"duckdb_query_duration_seconds", "http_server_request_duration_seconds"} <= families


def test_openmetrics_exemplar_carries_the_trace_id(
    api: TestClient, spans: InMemorySpanExporter
) -> None:
    header, trace_id = traceparent()
    api.get("/api/v1/flights/4", headers={"traceparent": header})
    text = api.get("/metrics", headers=OPENMETRICS).text
    pattern = (
        r'duckdb_query_duration_seconds_bucket\{[^}]*query="flight_get"[^}]*\} \S+ '
        rf'# \{{trace_id="{trace_id}"\}}'
    )
    assert re.search(pattern, text), "no exemplar with the request's trace id"
    exemplars = [
        sample.exemplar
        for family in parse_openmetrics(text)
        for sample in family.samples
        if sample.exemplar is not None
    ]
    assert exemplars and all(HEX32.match(e.labels["trace_id"]) for e in exemplars)


def test_metrics_token(template_db: Path, tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    app = create_app(make_settings(copy_db(template_db, tmp_path), metrics_token=token))
    with ReadyTestClient(app, headers=AUTH) as client:
        missing = client.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert missing.headers["content-type"] == "application/problem+json"
        assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": token}).status_code == 401
        right = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200 and "duckdb_query_duration_seconds" in right.text
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_production_without_metrics_token_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("METRICS_TOKEN", "METRICS_PUBLIC")}
    env.update(APP_ENV="production", DATABASE_PATH=str(tmp_path / "app.db"), PORT="1")
    result = subprocess.run(
        [sys.executable, "-m", "api", "serve"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "METRICS_TOKEN" in result.stdout  # one JSON line (tests/test_security.py)
    assert not (tmp_path / "app.db").exists()  # refused before touching anything

    # METRICS_PUBLIC=true is the explicit opt-out; a (strong) token alone is fine too
    key = "production-api-key-0123456789abcdefXYZ"
    production = {"app_env": "production", "backend_api_key": key}
    assert make_settings(tmp_path / "x.db", metrics_public=True, **production)
    assert make_settings(tmp_path / "x.db", metrics_token=key[::-1], **production)
