"""Telemetry of the frontend's calls to the backend API (service-specific, frontend only).

- ``backend_request_duration_seconds`` histogram {http_request_method, http_route (backend
  route template), outcome: ok | client_error | server_error | unavailable}; a call refused
  by the open circuit breaker is ``unavailable`` taking 0 s (:func:`observe_backend`).
- ``backend_circuit_breaker_state`` gauge {state: closed | open | half_open}, livesum: how
  many workers' circuit breakers are in each state (:func:`set_circuit_state`).
- :func:`name_client_span`: the request hook of OpenTelemetry's httpx transport. It names
  every CLIENT span ``{http.request.method} {url.template}`` and sets ``url.template``, the
  backend's route template (``/api/v1/flights/{flight_id}``) that the backend client passes
  with each request in the httpx request extension :data:`URL_TEMPLATE` (semconv: HTTP client
  span names use the template when it is known; the instrumentation alone names them ``GET``).
"""

from __future__ import annotations

from typing import Any, Literal

from opentelemetry.trace import Span
from prometheus_client import Gauge, Histogram

from .metrics import HTTP_BUCKETS, KNOWN_METHODS, normalize_method

# The httpx request extension that carries the backend route template of a call.
URL_TEMPLATE = "url.template"


def name_client_span(span: Span, request: Any) -> None:
    """httpx instrumentation ``request_hook(span, RequestInfo)``: name the span after the
    call's route template and set ``url.template``. Leaves a call without a template (none
    is made today) with the instrumentation's name."""
    extensions = request.extensions or {}
    template = extensions.get(URL_TEMPLATE)
    if not template or not span.is_recording():
        return
    method = request.method.decode() if isinstance(request.method, bytes) else str(request.method)
    span.update_name(f"{method if method in KNOWN_METHODS else 'HTTP'} {template}")
    span.set_attribute("url.template", template)


# -- metrics ---------------------------------------------------------------------------------

BackendOutcome = Literal["ok", "client_error", "server_error", "unavailable"]
# Label values of backend_circuit_breaker_state (web/circuit_breaker.py).
CIRCUIT_STATES = ("closed", "open", "half_open")

BACKEND_DURATION = Histogram(
    "backend_request_duration_seconds",
    "Duration of calls to the backend API, by backend route template and outcome (seconds).",
    ["http_request_method", "http_route", "outcome"],
    buckets=HTTP_BUCKETS,
)
CIRCUIT_STATE = Gauge(
    "backend_circuit_breaker_state",
    "Worker processes whose circuit breaker around backend calls is in this state.",
    ["state"],
    # Each worker sets 1 for its state and 0 for the others: the sum counts workers; a dead
    # worker's value disappears with it.
    multiprocess_mode="livesum",
)


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
    """Record one backend call. `route` is the backend's route *template*, never a raw path."""
    BACKEND_DURATION.labels(normalize_method(method), route, backend_outcome(status_code)).observe(
        seconds
    )


def set_circuit_state(state: str) -> None:
    """Publish this worker's circuit breaker state: 1 for `state`, 0 for the other states."""
    for name in CIRCUIT_STATES:
        CIRCUIT_STATE.labels(name).set(1 if name == state else 0)
