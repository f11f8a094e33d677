"""Telemetry contract tests (docs/observability.md): logs, traces and metrics of both services
as real processes, exporting OTLP/HTTP to an in-test receiver, scraped by a real Prometheus.

These pin what the two services must agree on without sharing code: trace propagation across
the hop, the log schema, request ids and metric names.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import ROOT, Service, Stack, backend_service, copy_db, free_port, frontend_service
from otlp_receiver import OTLPReceiver, Span
from prometheus_client.parser import text_string_to_metric_families
from registry_checks import log_problems, metric_problems, resource_problems, span_problems

pytestmark = pytest.mark.timeout(300)

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
PROBES = ("/livez", "/readyz", "/health", "/metrics")


def otel_env(receiver: OTLPReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # milliseconds: export quickly in tests
        "LOG_FORMAT": "json",
        "WEB_CONCURRENCY": "3",
        # Both services force the stable HTTP conventions whatever this says (tracing.py).
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http/dup",
    }


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    running = OTLPReceiver().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def traced(
    demo_db: Path, log_dir: Path, receiver: OTLPReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A stack of its own exporting traces to the in-test receiver, three gunicorn workers."""
    db_path = copy_db(demo_db, tmp_path_factory.mktemp("traced"))
    backend = backend_service(db_path, log_dir, **otel_env(receiver)).start()
    frontend = frontend_service(backend.url, log_dir, **otel_env(receiver)).start()
    yield Stack(backend=backend, frontend=frontend, db_path=db_path)
    frontend.stop()
    backend.stop()


def traceparent(sampled: bool) -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-{'01' if sampled else '00'}", trace_id, parent_id


def json_lines(service: Service) -> list[dict]:
    """Every line the service wrote so far, parsed; fails on the first line that isn't JSON."""
    records = []
    for number, line in enumerate(service.log_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"{service.name} line {number} is not JSON: {line[:300]}")
        assert isinstance(record, dict), line
        records.append(record)
    return records


def scrape(service: Service) -> str:
    response = httpx.get(service.url + "/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def sample_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def by_id(spans: list[Span]) -> dict[str, Span]:
    return {s.span_id: s for s in spans}


def test_one_trace_from_browser_request_down_to_duckdb(
    traced: Stack, receiver: OTLPReceiver
) -> None:
    header, trace_id, remote_parent = traceparent(sampled=True)
    response = httpx.get(
        traced.frontend.url + "/flights/1", headers={"traceparent": header}, timeout=10
    )
    assert response.status_code == 200

    def complete(spans: list[Span]) -> bool:
        mine = [s for s in spans if s.trace_id == trace_id]
        return any(s.attributes.get("db.system.name") == "duckdb" for s in mine) and any(
            s.service == "flights-frontend" and s.kind == "SERVER" for s in mine
        )

    receiver.wait_for(complete)
    time.sleep(0.5)  # let the last batches arrive
    spans = receiver.trace(trace_id)
    index = by_id(spans)

    front_server = [s for s in spans if s.service == "flights-frontend" and s.kind == "SERVER"]
    assert len(front_server) == 1, spans
    front_server = front_server[0]
    assert front_server.parent_span_id == remote_parent
    assert front_server.attributes.get("http.route") == "/flights/<int:flight_id>"

    clients = [s for s in spans if s.service == "flights-frontend" and s.kind == "CLIENT"]
    assert clients and all(c.parent_span_id == front_server.span_id for c in clients)

    back_server = [s for s in spans if s.service == "flights-backend" and s.kind == "SERVER"]
    assert len(back_server) == len(clients)
    assert {s.parent_span_id for s in back_server} <= {c.span_id for c in clients}

    db_spans = [s for s in spans if s.attributes.get("db.system.name") == "duckdb"]
    assert db_spans
    for db_span in db_spans:
        assert db_span.service == "flights-backend"
        assert db_span.attributes["db.query.summary"] == db_span.name
        assert db_span.attributes["db.operation.name"] == "SELECT"
        assert "db.response.returned_rows" in db_span.attributes
        # the DuckDB span hangs below the backend's server span (possibly via internal spans)
        ancestor = index.get(db_span.parent_span_id)
        while ancestor is not None and ancestor.kind != "SERVER":
            ancestor = index.get(ancestor.parent_span_id)
        assert ancestor is not None and ancestor.service == "flights-backend"

    # no duplicate instrumentation: one server span per service per request
    assert len(
        {(s.service, s.name, s.parent_span_id, s.kind) for s in spans if s.kind == "SERVER"}
    ) == len([s for s in spans if s.kind == "SERVER"])
    for span in spans:
        assert span.resource["service.instance.id"]
        assert span.resource["deployment.environment.name"] == "development"
        assert span.resource["service.version"]

    # the backend's log lines of this request carry the exported trace id, exactly
    backend_lines = [r for r in json_lines(traced.backend) if r.get("trace_id") == trace_id]
    assert any(r.get("event") == "http.request" for r in backend_lines)
    assert {r["span_id"] for r in backend_lines} <= {s.span_id for s in spans}
    frontend_lines = [r for r in json_lines(traced.frontend) if r.get("trace_id") == trace_id]
    access = [r for r in frontend_lines if r.get("event") == "http.request"]
    assert len(access) == 1
    assert access[0]["http.route"] == "/flights/<int:flight_id>"
    assert access[0]["http.response.status_code"] == 200


OLD_HTTP_ATTRIBUTES = {"http.method", "http.status_code", "http.target", "http.url", "http.scheme",
                       "http.host", "net.host.port", "net.peer.name", "net.peer.port",
                       "http.server_name", "http.flavor", "http.user_agent"}  # fmt: skip


def test_spans_use_the_stable_conventions_whatever_the_environment_says(
    traced: Stack, receiver: OTLPReceiver
) -> None:
    header, trace_id, _ = traceparent(sampled=True)
    response = httpx.get(
        traced.frontend.url + "/flights/4", headers={"traceparent": header}, timeout=10
    )
    assert response.status_code == 200
    receiver.wait_for(
        lambda spans: any(s.trace_id == trace_id and s.service == "flights-frontend" and
                          s.kind == "SERVER" for s in spans)
    )  # fmt: skip
    time.sleep(0.5)
    spans = receiver.trace(trace_id)
    assert {s.service for s in spans} == {"flights-frontend", "flights-backend"}
    for span in spans:
        assert not OLD_HTTP_ATTRIBUTES & set(span.attributes), (span.name, span.attributes)
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            span.resource["service.instance.id"],
        ), span.resource
        assert "deployment.environment" not in span.resource
    for span in spans:
        if span.kind == "SERVER":
            assert span.attributes["http.request.method"] == "GET"
            assert span.name == f"GET {span.attributes['http.route']}"
    clients = [s for s in spans if s.service == "flights-frontend" and s.kind == "CLIENT"]
    assert "GET /api/v1/flights/{flight_id}" in {s.name for s in clients}
    for span in clients:
        assert span.name == f"GET {span.attributes['url.template']}"


def exercise(stack: Stack) -> list[str]:
    """Pages and API calls that produce every kind of span of both services (sampled trace
    ids returned): a page, a search, a flight, a 404, a form, an API error."""
    trace_ids = []
    for path in (
        "/",
        "/flights?origin=JFK&carrier=UA",
        "/flights/5",
        "/no-such-page",
        "/flights/new",
        "/flights/999999999",
    ):
        header, trace_id, _ = traceparent(sampled=True)
        trace_ids.append(trace_id)
        httpx.get(stack.frontend.url + path, headers={"traceparent": header}, timeout=10)
    return trace_ids  # fmt: skip


def test_spans_match_the_registry(traced: Stack, receiver: OTLPReceiver) -> None:
    """Every span of both services, attribute by attribute, against telemetry/registry."""
    trace_ids = set(exercise(traced))
    receiver.wait_for(lambda spans: {s.trace_id for s in spans} >= trace_ids)
    time.sleep(1.0)  # the last batches (backend spans end before the frontend's)
    spans = [s for s in receiver.spans if s.trace_id in trace_ids]
    services = {s.service for s in spans}
    assert services == {"flights-frontend", "flights-backend"}, services
    kinds = {(s.service, s.kind) for s in spans}
    assert ("flights-frontend", "CLIENT") in kinds and ("flights-backend", "CLIENT") in kinds
    problems = []
    for span in spans:
        problems += span_problems(span.service, span.kind, span.name, span.attributes)
        problems += resource_problems(span.service, span.resource)
    assert not problems, "\n".join(sorted(set(problems)))


def test_metrics_match_the_registry(traced: Stack) -> None:
    """A real scrape of each service: names, types, units, labels and buckets."""
    exercise(traced)
    problems = []
    for service, name in (
        (traced.frontend, "flights-frontend"),
        (traced.backend, "flights-backend"),
    ):
        problems += metric_problems(name, scrape(service))
    assert not problems, "\n".join(problems)  # fmt: skip


def test_log_lines_match_the_registry(traced: Stack) -> None:
    """Every line both services wrote so far: events, fields, loggers, levels."""
    exercise(traced)
    time.sleep(0.5)
    problems = []
    events = set()
    for service, name in (
        (traced.frontend, "flights-frontend"),
        (traced.backend, "flights-backend"),
    ):
        for record in json_lines(service):
            events.add(record.get("event"))
            problems += log_problems(name, record)
    assert not problems, "\n".join(problems[:40])
    # application events of both services were among them, not only the access line
    assert {"http.request", "database.opened", "tracing.ready"} <= events, events  # fmt: skip


def test_parent_based_sampling(traced: Stack, receiver: OTLPReceiver) -> None:
    unsampled, unsampled_trace, _ = traceparent(sampled=False)
    sampled, sampled_trace, _ = traceparent(sampled=True)
    for header in (unsampled, sampled):
        response = httpx.get(
            traced.frontend.url + "/flights/2", headers={"traceparent": header}, timeout=10
        )
        assert response.status_code == 200
    receiver.wait_for(lambda spans: any(s.trace_id == sampled_trace for s in spans))
    time.sleep(1.0)  # both requests' spans would have been exported by now
    assert receiver.trace(unsampled_trace) == []
    assert {s.service for s in receiver.trace(sampled_trace)} == {
        "flights-frontend",
        "flights-backend",
    }
    # not sampled still means correlated: the log lines carry the caller's trace id
    assert any(r.get("trace_id") == unsampled_trace for r in json_lines(traced.backend))


def test_probes_and_scrapes_are_not_traced(traced: Stack, receiver: OTLPReceiver) -> None:
    for service in (traced.frontend, traced.backend):
        for path in PROBES:
            header, trace_id, _ = traceparent(sampled=True)
            httpx.get(service.url + path, headers={"traceparent": header}, timeout=10)
            time.sleep(0.3)
            assert receiver.trace(trace_id) == [], (service.name, path)


def test_every_stdout_line_is_json_with_the_schema(traced: Stack) -> None:
    request_id = "contract-" + secrets.token_hex(8)
    response = httpx.get(
        traced.frontend.url + "/flights?origin=JFK", headers={"X-Request-ID": request_id}
    )
    assert response.headers["X-Request-ID"] == request_id
    missing = httpx.get(traced.frontend.url + "/no-such-page")
    assert missing.status_code == 404
    assert len(missing.headers["X-Request-ID"]) >= 8
    # a header value the server accepts but our rule does not: replaced by a fresh id
    for service in (traced.frontend, traced.backend):
        bad_id = httpx.get(service.url + "/livez", headers={"X-Request-ID": "bad id <script>"})
        assert re.match(r"^[0-9a-f]{32}$", bad_id.headers["X-Request-ID"])
    time.sleep(0.5)

    for service, name in (
        (traced.frontend, "flights-frontend"),
        (traced.backend, "flights-backend"),
    ):
        records = json_lines(service)
        assert records
        for record in records:
            for key in ("timestamp", "level", "event", "logger"):
                assert key in record, (service.name, record)
            assert record["service.name"] == name
            assert record["deployment.environment.name"] == "development"
            assert record["timestamp"].endswith("Z") or record["timestamp"].endswith("+00:00")
            if "trace_id" in record:
                assert HEX32.match(record["trace_id"]), record
                assert HEX16.match(record["span_id"]), record
        # the request id crossed the hop and is logged on both sides
        tagged = [r for r in records if r.get("request_id") == request_id]
        assert any(r.get("event") == "http.request" for r in tagged), service.name
        for access in (r for r in records if r.get("event") == "http.request"):
            for key in (
                "http.request.method",
                "http.route",
                "url.path",
                "http.response.status_code",
                "duration_ms",
                "client.address",
                "user_agent.original",
            ):
                assert key in access, (service.name, access)


def test_request_counts_are_exact_across_workers(traced: Stack, receiver: OTLPReceiver) -> None:
    route = "/flights/<int:flight_id>"
    before_front = scrape(traced.frontend)
    before_back = scrape(traced.backend)
    n = 60
    trace_ids = []

    def one(i: int) -> httpx.Response:
        header, trace_id, _ = traceparent(sampled=True)
        trace_ids.append(trace_id)
        # a new connection per request lets the kernel hand requests to different workers
        with httpx.Client(timeout=10) as client:
            return client.get(
                f"{traced.frontend.url}/flights/{10 + i}", headers={"traceparent": header}
            )

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(one, range(n)))
    assert all(r.status_code == 200 for r in responses)

    after_front = scrape(traced.frontend)
    name = "http_server_request_duration_seconds_count"
    rise = sample_sum(after_front, name, http_route=route) - sample_sum(
        before_front, name, http_route=route
    )
    assert rise == n

    # the requests really were spread over several workers
    pids = {
        r.get("process.pid")
        for r in json_lines(traced.frontend)
        if r.get("event") == "http.request" and r.get("trace_id") in set(trace_ids)
    }
    assert len(pids) > 1, pids

    # the DuckDB histogram rose by exactly the number of queries the traces show
    receiver.wait_for(
        lambda spans: (
            {s.trace_id for s in spans if s.service == "flights-backend"} >= set(trace_ids)
        )
    )
    time.sleep(0.5)
    wanted = set(trace_ids)
    queries = [
        s
        for s in receiver.spans
        if s.trace_id in wanted and s.attributes.get("db.system.name") == "duckdb"
    ]
    after_back = scrape(traced.backend)
    db_rise = sample_sum(after_back, "duckdb_query_duration_seconds_count") - sample_sum(
        before_back, "duckdb_query_duration_seconds_count"
    )
    assert db_rise == len(queries) >= n


def test_metrics_pass_promtool_and_carry_exemplars(traced: Stack) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make test` installs Debian's prometheus package"
    httpx.get(traced.frontend.url + "/flights/3", timeout=10)
    for service in (traced.frontend, traced.backend):
        text = scrape(service)
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert result.returncode == 0 and not result.stdout.strip(), (
            service.name,
            result.stdout,
            result.stderr,
        )
        assert "app_build_info{" in text
        assert "http_server_request_duration_seconds_bucket{" in text
    backend_text = scrape(traced.backend)
    for name in (
        "duckdb_query_duration_seconds_bucket",
        "duckdb_query_returned_rows_total",
        "duckdb_database_size_bytes",
        "duckdb_wal_size_bytes",
    ):
        assert name in backend_text
    assert sample_sum(backend_text, "duckdb_database_size_bytes") > 1_000_000
    assert "backend_request_duration_seconds_bucket{" in scrape(traced.frontend)

    # exemplars: only in the OpenMetrics format, and they carry the trace id
    openmetrics = httpx.get(
        traced.backend.url + "/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        timeout=10,
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert re.search(
        r'duckdb_query_duration_seconds_bucket\{.*\} \S+ # \{trace_id="[0-9a-f]{32}"',
        openmetrics.text,
    )


def test_real_prometheus_scrapes_both_services(traced: Stack, tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus missing: `make test` installs Debian's prometheus package"
    config = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text())
    targets = {"frontend": traced.frontend, "backend": traced.backend}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{targets[job['job_name']].port}"]}]
        job["scrape_interval"] = "1s"
    config["rule_files"] = [str(ROOT / "ops/prometheus" / f) for f in config.get("rule_files", [])]
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    try:
        deadline = time.monotonic() + 60
        health: dict[str, str] = {}
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2).json()
                health = {t["labels"]["job"]: t["health"] for t in answer["data"]["activeTargets"]}
                if health == {"frontend": "up", "backend": "up"}:
                    break
            except (httpx.HTTPError, ValueError):  # still starting: no answer or no JSON yet
                pass
            time.sleep(0.5)
        assert health == {"frontend": "up", "backend": "up"}, (
            health,
            (tmp_path / "prometheus.log").read_text()[-2000:],
        )
        rules = httpx.get(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5).json()
        assert rules["data"]["groups"], "the alert rules were not loaded"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_metrics_token(demo_db: Path, log_dir: Path, tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    backend = backend_service(copy_db(demo_db, tmp_path), log_dir, METRICS_TOKEN=token).start()
    try:
        frontend = frontend_service(backend.url, log_dir, METRICS_TOKEN=token).start()
        try:
            for service in (backend, frontend):
                assert httpx.get(service.url + "/metrics").status_code == 401
                wrong = {"Authorization": "Bearer nope"}
                assert httpx.get(service.url + "/metrics", headers=wrong).status_code == 401
                right = {"Authorization": f"Bearer {token}"}
                assert httpx.get(service.url + "/metrics", headers=right).status_code == 200
            assert token not in frontend.log_text() + backend.log_text()
        finally:
            frontend.stop()
    finally:
        backend.stop()


@pytest.mark.parametrize("which", ["backend", "frontend"])
def test_production_refuses_public_metrics_without_token(
    which: str, tmp_path: Path, log_dir: Path
) -> None:
    env = {"APP_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48)}
    if which == "backend":
        service = backend_service(tmp_path / "app.db", log_dir, **env)
    else:
        service = frontend_service("http://127.0.0.1:9", log_dir, **env)
    with pytest.raises(RuntimeError, match="exited early"):
        service.start(timeout=60)
    assert "METRICS_TOKEN" in service.log_text()
