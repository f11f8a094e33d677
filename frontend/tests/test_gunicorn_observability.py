"""Observability of the real server: gunicorn with several workers, as Coolify starts it.

Each test starts ``gunicorn -c gunicorn.conf.py "web:create_app()"`` from the frontend folder
against the in-process fake backend and reads the combined stdout/stderr. These catch what
in-process tests cannot: JSON from gunicorn's master, per-worker tracing after the fork, and
Prometheus multiprocess totals across workers.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.fake_backend import FakeBackend

FRONTEND_DIR = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
SCHEMA_KEYS = ("timestamp", "level", "event", "logger", "service.name", "process.pid")


@dataclass
class Gunicorn:
    """One gunicorn master with its workers; output (stdout + stderr) goes to ``log_path``."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Gunicorn:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_"))}
        env.update(
            HOST="127.0.0.1",
            PORT=str(self.port),
            APP_ENV="test",
            LOG_LEVEL="INFO",
            LOG_FORMAT="json",
            WEB_CONCURRENCY="3",
            # These tests are about telemetry, not the 1 s page budget: freshly forked workers
            # on a busy shared machine can take longer than that for their first pages.
            BACKEND_READ_TIMEOUT_SECONDS="5",
        )
        env.update(self.env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(GUNICORN), "-c", "gunicorn.conf.py", "web:create_app()"],
                cwd=FRONTEND_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.text()}")
            try:
                if httpx.get(self.url + "/livez", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn not ready:\n{self.text()}")

    def stop(self) -> int | None:
        """SIGTERM (as Coolify does) and wait; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def records(self) -> list[dict[str, Any]]:
        """Every output line parsed; fails the test on the first line that is not JSON."""
        out = []
        for number, line in enumerate(self.text().splitlines(), 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"line {number} is not JSON: {line[:300]}")
            assert isinstance(record, dict)
            out.append(record)
        return out


def count(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    with FakeBackend() as fake:
        yield fake


@pytest.fixture
def server(backend: FakeBackend, tmp_path: Path) -> Iterator[Gunicorn]:
    running = Gunicorn({"BACKEND_URL": backend.url}, tmp_path / "gunicorn.log").start()
    yield running
    running.stop()


def test_every_line_is_json_from_start_to_shutdown(server: Gunicorn, backend: FakeBackend) -> None:
    ok = httpx.get(server.url + "/flights/1", headers={"X-Request-ID": "gunicorn-json-1"})
    assert ok.status_code == 200 and ok.headers["X-Request-ID"] == "gunicorn-json-1"
    assert httpx.get(server.url + "/no-such-page").status_code == 404
    backend.status_override = 503
    outage = httpx.get(server.url + "/flights")
    assert outage.status_code == 503 and outage.headers["X-Request-ID"]
    assert server.stop() == 0

    records = server.records()
    for record in records:
        for key in SCHEMA_KEYS:
            assert key in record, record
        assert record["service.name"] == "flights-frontend"
        assert record["deployment.environment.name"] == "test"
        assert record["timestamp"].endswith("Z")
    events = [r["event"] for r in records]
    assert any(e.startswith("Starting gunicorn") for e in events)  # master, before workers
    assert any(e.startswith("Booting worker") for e in events)
    assert any("signal: term" in e.lower() for e in events)
    assert any(e.startswith("Shutting down") for e in events)

    # (/livez: the start-up poll.) In time order: each worker writes its access lines every
    # 50 ms, so lines of different workers may reach the file in another order.
    access = sorted(
        (r for r in records if r["event"] == "http.request" and r["url.path"] != "/livez"),
        key=lambda r: str(r["timestamp"]),
    )
    assert [a["http.response.status_code"] for a in access] == [200, 404, 503]
    assert access[0]["request_id"] == "gunicorn-json-1"
    assert access[0]["http.route"] == "/flights/<int:flight_id>"
    assert len(access[0]["trace_id"]) == 32 and len(access[0]["span_id"]) == 16
    assert access[1]["http.route"] == "unmatched"
    # the request id of the outage reached its warning line too
    outage_id = outage.headers["X-Request-ID"]
    assert any(r["level"] == "warning" and r.get("request_id") == outage_id for r in records)
    # gunicorn's own access log is off: one access line per request, ours
    assert not any(r["logger"] == "gunicorn.access" for r in records)
    # worker pids and the master's pid both appear
    assert len({r["process.pid"] for r in records}) >= 2


def test_request_counts_are_exact_across_three_workers(server: Gunicorn) -> None:
    route = "/flights/<int:flight_id>"
    name = "http_server_request_duration_seconds_count"
    before = httpx.get(server.url + "/metrics").text
    n = 60

    def one(i: int) -> int:
        # a new connection per request lets the kernel hand requests to different workers
        with httpx.Client(timeout=10) as client:
            return client.get(f"{server.url}/flights/{1 + i % 3}").status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(one, range(n))) == {200}
    after = httpx.get(server.url + "/metrics").text
    assert count(after, name, http_route=route) - count(before, name, http_route=route) == n
    backend_name = "backend_request_duration_seconds_count"
    flight_route = "/api/v1/flights/{flight_id}"
    rise = count(after, backend_name, http_route=flight_route) - count(
        before, backend_name, http_route=flight_route
    )
    assert rise == n
    # merged, not per worker: a single app_build_info series with value 1
    assert count(after, "app_build_info") == 1
    # the only request in flight is the scrape itself
    assert count(after, "http_server_active_requests") == 1
    pids = {r["process.pid"] for r in server.records() if r.get("event") == "http.request"}
    assert len(pids) > 1, pids

    promtool = shutil.which("promtool")
    if promtool:
        result = subprocess.run(
            [promtool, "check", "metrics"], input=after, capture_output=True, text=True
        )
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_dead_worker_samples_are_kept_and_its_gauges_dropped(server: Gunicorn) -> None:
    name = "http_server_request_duration_seconds_count"
    for _ in range(6):
        with httpx.Client() as client:
            client.get(server.url + "/livez")
    before = count(httpx.get(server.url + "/metrics").text, name, http_route="/livez")
    worker_pids = {
        r["process.pid"] for r in server.records() if r["event"].startswith("Booting worker")
    }
    victim = next(iter(worker_pids))
    os.kill(victim, signal.SIGKILL)  # gunicorn replaces it; child_exit marks it dead
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        booted = [r for r in server.records() if r["event"].startswith("Booting worker")]
        if len(booted) > len(worker_pids):
            break
        time.sleep(0.1)
    after = httpx.get(server.url + "/metrics").text
    assert count(after, name, http_route="/livez") == before  # the dead worker's counts stay
    assert count(after, "http_server_active_requests") == 1  # only this scrape in flight


def test_metrics_token_on_the_real_server(backend: FakeBackend, tmp_path: Path) -> None:
    token = "real-server-metrics-token"
    server = Gunicorn(
        {"BACKEND_URL": backend.url, "METRICS_TOKEN": token}, tmp_path / "g.log"
    ).start()
    try:
        assert httpx.get(server.url + "/metrics").status_code == 401
        bad = httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer x"})
        assert bad.status_code == 401
        good = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {token}"})
        assert good.status_code == 200
    finally:
        server.stop()
    assert token not in server.text()


@pytest.mark.parametrize("public", [False, True])
def test_production_requires_a_metrics_token(
    public: bool, backend: FakeBackend, tmp_path: Path
) -> None:
    env = {
        "BACKEND_URL": backend.url,
        "APP_ENV": "production",
        "SECRET_KEY": "gunicorn-test-secret-key-0123456789abcdef",
        "BACKEND_API_KEY": "gunicorn-test-backend-api-key-0123456789",
        "METRICS_PUBLIC": "true" if public else "false",
    }
    server = Gunicorn(env, tmp_path / "g.log")
    if public:
        server.start()
        assert httpx.get(server.url + "/metrics").status_code == 200
        server.stop()
        return
    with pytest.raises(RuntimeError, match="exited early"):
        server.start()
    assert server.process is not None and server.process.returncode != 0
    (refusal,) = server.records()  # one JSON line, before any worker booted
    assert refusal["level"] == "critical"
    assert [error["variable"] for error in refusal["errors"]] == ["METRICS_TOKEN"]


def test_stale_multiprocess_files_are_removed_at_start(
    backend: FakeBackend, tmp_path: Path
) -> None:
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    stale = prom_dir / "counter_99999.db"
    stale.write_bytes(b"\0" * 16)
    server = Gunicorn(
        {"BACKEND_URL": backend.url, "PROMETHEUS_MULTIPROC_DIR": str(prom_dir)},
        tmp_path / "g.log",
    ).start()
    try:
        assert not stale.exists()
        assert httpx.get(server.url + "/metrics").status_code == 200
    finally:
        server.stop()
    assert prom_dir.exists()  # an operator's directory is emptied, never deleted


class _Collector:
    """A minimal OTLP/HTTP receiver: decodes ``POST /v1/traces`` protobuf into dicts."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for rs in request.resource_spans:
                    resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                    for ss in rs.scope_spans:
                        for span in ss.spans:
                            collector.spans.append(
                                {
                                    "name": span.name,
                                    "kind": span.kind,  # 2 SERVER, 3 CLIENT
                                    "trace_id": span.trace_id.hex(),
                                    "span_id": span.span_id.hex(),
                                    "parent_span_id": span.parent_span_id.hex(),
                                    "resource": resource,
                                }
                            )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_workers_export_spans_after_fork_and_flush_on_exit(
    backend: FakeBackend, tmp_path: Path
) -> None:
    collector = _Collector()
    # A schedule delay far beyond the test: spans only leave through worker_exit's flush.
    env = {
        "BACKEND_URL": backend.url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
    }
    server = Gunicorn(env, tmp_path / "g.log").start()
    try:
        trace_ids = [f"{i + 1:032x}" for i in range(30)]

        def one(trace_id: str) -> int:
            # concurrent, one connection each: the requests spread over the workers
            with httpx.Client(timeout=10) as client:
                header = f"00-{trace_id}-{'a' * 16}-01"
                return client.get(
                    f"{server.url}/flights/1", headers={"traceparent": header}
                ).status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            assert set(pool.map(one, trace_ids)) == {200}
        for path in ("/livez", "/readyz", "/health", "/metrics"):
            httpx.get(server.url + path, headers={"traceparent": f"00-{'f' * 32}-{'b' * 16}-01"})
            httpx.get(server.url + path)
        time.sleep(0.3)
        assert collector.spans == []  # still queued in the workers' batch processors
    finally:
        assert server.stop() == 0
    try:
        spans = collector.spans
        assert {s["trace_id"] for s in spans} == set(trace_ids)  # probes: nothing, no orphans
        servers = [s for s in spans if s["kind"] == 2]
        clients = [s for s in spans if s["kind"] == 3]
        assert len(servers) == len(trace_ids)
        by_id = {s["span_id"]: s for s in servers}
        for client_span in clients:
            parent = by_id[client_span["parent_span_id"]]
            assert parent["trace_id"] == client_span["trace_id"]
        assert all(s["parent_span_id"] == "a" * 16 for s in servers)
        resource = servers[0]["resource"]
        assert resource["service.name"] == "flights-frontend"
        assert resource["deployment.environment.name"] == "test"
        assert resource["service.version"]
        # one service.instance.id per worker process, and more than one worker served
        instances = {s["resource"]["service.instance.id"] for s in servers}
        assert 1 < len(instances) <= 3
        # what the backend received: the ids of the client spans, one per backend call
        sent = [h["traceparent"] for h in backend.headers_for("/api/v1/flights/1")]
        assert len(sent) == len(trace_ids)
        assert {h.split("-")[2] for h in sent} <= {c["span_id"] for c in clients}
    finally:
        collector.close()
