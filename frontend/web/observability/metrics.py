"""Prometheus metrics of the frontend, correct across several gunicorn worker processes.

Multiprocess mode (prometheus-client) is on when ``PROMETHEUS_MULTIPROC_DIR`` is in the
environment *before* ``prometheus_client`` is first imported: gunicorn.conf.py sets it at its
very top (a fresh temp dir per gunicorn instance), empties it in ``on_starting`` (master, before
any worker) with :func:`empty_multiproc_dir`, and calls :func:`mark_process_dead` from
``child_exit``. Each worker then writes its samples to mmapped files in that directory and
:func:`render` merges all of them on every scrape. Without the variable (tests, ``flask run``)
the default in-process registry is used.

Metrics (docs/observability.md, "Metrics"); durations in seconds:

- ``http_server_request_duration_seconds`` histogram {http_request_method, http_route,
  http_response_status_code}; its ``_count`` is the request count.
- ``http_server_active_requests`` gauge {http_request_method, http_route}, livesum.
- ``backend_request_duration_seconds`` histogram {http_request_method, http_route (backend
  route template), outcome: ok | client_error | server_error | unavailable}; a call refused
  by the open circuit breaker is ``unavailable`` taking 0 s.
- ``backend_circuit_breaker_state`` gauge {state: closed | open | half_open}, livesum: how
  many workers' circuit breakers are in each state.
- ``app_build_info`` gauge = 1 {service_name, version, git_commit}, max.

Label values are bounded: routes are templates (``unmatched`` when none matched), methods
outside the standard set are ``_OTHER``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder

from web.observability import ServiceInfo

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "_OTHER"
# The HTTP methods of RFC 9110 plus PATCH (OpenTelemetry's "known methods").
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
# Seconds. OpenTelemetry's recommended HTTP duration buckets; 0.25 and 0.5 are the alert
# thresholds in ops/prometheus/rules (p95 latency per service).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

BackendOutcome = Literal["ok", "client_error", "server_error", "unavailable"]
# Label values of backend_circuit_breaker_state (web/circuit_breaker.py).
CIRCUIT_STATES = ("closed", "open", "half_open")

HTTP_SERVER_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests, from routing to the response (seconds).",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=DURATION_BUCKETS,
)
HTTP_SERVER_ACTIVE = Gauge(
    "http_server_active_requests",
    "HTTP server requests in flight.",
    ["http_request_method", "http_route"],
    # Sum over live workers; a dead worker's in-flight count disappears with it.
    multiprocess_mode="livesum",
)
BACKEND_DURATION = Histogram(
    "backend_request_duration_seconds",
    "Duration of calls to the backend API, by backend route template and outcome (seconds).",
    ["http_request_method", "http_route", "outcome"],
    buckets=DURATION_BUCKETS,
)
CIRCUIT_STATE = Gauge(
    "backend_circuit_breaker_state",
    "Worker processes whose circuit breaker around backend calls is in this state.",
    ["state"],
    # Each worker sets 1 for its state and 0 for the others: the sum counts workers; a dead
    # worker's value disappears with it.
    multiprocess_mode="livesum",
)
BUILD_INFO = Gauge(
    "app_build_info",
    "Always 1; labels identify the running build.",
    ["service_name", "version", "git_commit"],
    # Every worker writes 1; max keeps 1 (livesum would count workers).
    multiprocess_mode="max",
)


def multiprocess_enabled() -> bool:
    """True when samples go to ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn), not process memory."""
    return bool(os.environ.get(MULTIPROC_ENV))


def normalize_method(method: str) -> str:
    """``GET`` -> ``GET``; an unknown method (``FOO``) -> ``_OTHER`` (bounded label values)."""
    upper = method.upper()
    return upper if upper in KNOWN_METHODS else OTHER_METHOD


def backend_outcome(status_code: int | None) -> BackendOutcome:
    """Outcome label of a backend call: None (no response: timeout, refused) -> unavailable."""
    if status_code is None:
        return "unavailable"
    if status_code >= 500:
        return "server_error"
    if status_code >= 400:
        return "client_error"
    return "ok"


def observe_backend(method: str, route: str, status_code: int | None, seconds: float) -> None:
    """Record one backend call. ``route`` is the backend's route *template*, never a raw path."""
    BACKEND_DURATION.labels(normalize_method(method), route, backend_outcome(status_code)).observe(
        seconds
    )


def set_circuit_state(state: str) -> None:
    """Publish this worker's circuit breaker state: 1 for ``state``, 0 for the other states."""
    for name in CIRCUIT_STATES:
        CIRCUIT_STATE.labels(name).set(1 if name == state else 0)


def set_build_info(info: ServiceInfo) -> None:
    """Publish ``app_build_info{service_name, version, git_commit} 1`` from this process."""
    BUILD_INFO.labels(info.name, info.version, info.git_commit).set(1)


def render(accept: str | None) -> tuple[bytes, str]:
    """The exposition for one scrape: ``(body, content_type)``.

    OpenMetrics when ``accept`` asks for ``application/openmetrics-text``, the classic text
    format otherwise. In multiprocess mode a fresh registry with a ``MultiProcessCollector``
    merges every worker's files (live and dead) at each call.
    """
    registry: CollectorRegistry = REGISTRY
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def empty_multiproc_dir(path: str | os.PathLike[str]) -> int:
    """Delete prometheus-client's ``*.db`` files in ``path`` (gunicorn ``on_starting``).

    Returns how many were removed. Leftovers of an earlier run would otherwise be merged into
    this run's counters. Only ``*.db`` files are touched: the directory may be operator-chosen.
    """
    removed = 0
    for file in Path(path).glob("*.db"):
        file.unlink(missing_ok=True)
        removed += 1
    return removed


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn ``child_exit``); counters/histograms stay."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(pid)
