"""Prometheus metrics both services expose, and the `/metrics` rendering (docs/observability.md).

This file is identical in both services (`tests/test_shared_files.py`); each service's own
metrics live in its own file (backend: `database.py`, frontend: `backend_calls.py`).

Multiprocess mode (prometheus-client) is on when `PROMETHEUS_MULTIPROC_DIR` is in the
environment *before* `prometheus_client` is first imported (the frontend's gunicorn.conf.py
sets it, empties it with `empty_multiproc_dir` in `on_starting`, and calls `mark_process_dead`
from `child_exit`); `render` then merges every worker's files on each scrape. Without it (the
backend is one process; tests, `flask run`) the default in-process registry is used, with
process and GC metrics.

- `http_server_request_duration_seconds` histogram {http_request_method, http_route,
  http_response_status_code}; its `_count` is the request count; trace exemplars.
- `http_server_active_requests` gauge {http_request_method, http_route}, livesum.
- `app_build_info` gauge, always 1 {service_name, version, git_commit}, max.

Durations are seconds (`time.perf_counter`). Label values are bounded: routes are templates
(`unmatched` when none matched), methods outside the standard set are `_OTHER`. Exemplars
(the `trace_id` of a sampled span) appear only in the OpenMetrics format, and not at all in
multiprocess mode (prometheus-client keeps none there).
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import disable_created_metrics

from .identity import ServiceInfo
from .tracing import current_trace_exemplar

# `_created` series double the series count and no dashboard or alert reads them.
disable_created_metrics()

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "_OTHER"
# The HTTP methods of RFC 9110 plus PATCH (OpenTelemetry's "known methods").
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
# Seconds. OpenTelemetry's recommended HTTP duration buckets; 0.25 and 0.5 are the alert
# thresholds in ops/prometheus/rules (p95 latency per service).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

HTTP_REQUEST_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests, from routing to the response (seconds).",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=HTTP_BUCKETS,
)
HTTP_ACTIVE_REQUESTS = Gauge(
    "http_server_active_requests",
    "HTTP server requests in flight.",
    ["http_request_method", "http_route"],
    # Sum over live workers; a dead worker's in-flight count disappears with it.
    multiprocess_mode="livesum",
)
BUILD_INFO = Gauge(
    "app_build_info",
    "Always 1; the labels name the running build.",
    ["service_name", "version", "git_commit"],
    # Every worker writes 1; max keeps 1 (livesum would count workers).
    multiprocess_mode="max",
)


def multiprocess_enabled() -> bool:
    """True when samples go to `PROMETHEUS_MULTIPROC_DIR` (gunicorn), not process memory."""
    return bool(os.environ.get(MULTIPROC_ENV))


def normalize_method(method: str) -> str:
    """`GET` -> `GET`; an unknown method (`FOO`) -> `_OTHER` (bounded label values)."""
    upper = method.upper()
    return upper if upper in KNOWN_METHODS else OTHER_METHOD


def observe_http_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one finished HTTP request (`method` normalised, `route` a template), with a
    trace exemplar when a sampled span is active."""
    HTTP_REQUEST_DURATION.labels(method, route, str(status)).observe(
        seconds, exemplar=current_trace_exemplar()
    )


def set_build_info(info: ServiceInfo) -> None:
    """Publish `app_build_info{service_name, version, git_commit} 1` from this process."""
    BUILD_INFO.labels(info.name, info.version, info.git_commit).set(1)


def render(accept: str | None) -> tuple[bytes, str]:
    """The exposition for one scrape: `(body, content_type)`.

    OpenMetrics when `accept` asks for `application/openmetrics-text`, the classic text
    format 0.0.4 otherwise. In multiprocess mode a fresh registry with a
    `MultiProcessCollector` merges every worker's files (live and dead) at each call.
    """
    registry: CollectorRegistry = REGISTRY
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def empty_multiproc_dir(path: str | os.PathLike[str]) -> int:
    """Delete prometheus-client's `*.db` files in `path` (gunicorn `on_starting`).

    Returns how many were removed. Leftovers of an earlier run would otherwise be merged into
    this run's counters. Only `*.db` files are touched: the directory may be operator-chosen.
    """
    removed = 0
    for file in Path(path).glob("*.db"):
        file.unlink(missing_ok=True)
        removed += 1
    return removed


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn `child_exit`); counters/histograms stay."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(pid)
