"""Per-request telemetry: request id, log context, the access line and HTTP server metrics.

For every request (Flask hooks installed by :func:`install`, first of all hooks):

1. ``before_request``: clear the log context (gthread workers reuse threads, so values of the
   previous request would leak otherwise), take ``X-Request-ID`` from the caller when it
   matches ``^[A-Za-z0-9._-]{8,128}$`` or generate one (uuid4, 32 lowercase hex), bind it as
   ``request_id``, count the request as active, start the server span and make it current
   (``instrumentation.start_server_span``; not for the probes and /metrics).
2. ``after_request`` (last of all after-request hooks): return ``X-Request-ID``, observe
   ``http_server_request_duration_seconds`` and write the one access line (event
   ``http.request``, logger ``web.access``). It runs while the server span is still
   current, so the line carries trace_id/span_id.
3. ``teardown_request`` (last of all teardown hooks): end the server span with the response's
   status and the exception Flask handled, if any; the request is no longer active; clear
   the log context.

The backend client sends the same id on every backend call (:func:`current_request_id`).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

from flask import Flask, Response, g, request

from web.observability import logging as obs_logging
from web.observability import metrics
from web.observability.instrumentation import start_server_span
from web.observability.server_spans import ServerSpans, Started

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{8,128}")


def accept_or_generate_request_id(incoming: str | None) -> str:
    """The caller's id when well-formed (8-128 of ``A-Za-z0-9._-``), else a new uuid4 hex."""
    if incoming and REQUEST_ID_PATTERN.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The request id bound to the current log context; None outside a request."""
    value = obs_logging.current_context().get("request_id")
    return value if isinstance(value, str) else None


@dataclass
class _RequestState:
    request_id: str
    method: str  # normalized: a known method or "_OTHER"
    route: str  # the url_rule template or "unmatched"
    started: float  # time.perf_counter() seconds
    active: bool = False  # counted in http_server_active_requests, not yet released
    span: Started | None = None  # the server span, not yet ended
    status: int | None = None  # the status of the response after_request saw


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else metrics.UNMATCHED_ROUTE


def install(app: Flask, record: bool = True, spans: ServerSpans | None = None) -> None:
    """Register the hooks on ``app``. Call before any other ``before_request`` registration
    (CSRF), so an early failure there still has a request id, a span and an access line.

    ``record=False`` (``TELEMETRY_ENABLED=false``): only the request id (log context, response
    header, forwarded to the backend); no metrics, no access line, no spans. ``spans``: where
    the server spans come from (None: no tracer provider, no spans)."""
    spans = spans if record else None

    def new_state() -> _RequestState:
        request_id = accept_or_generate_request_id(request.headers.get(REQUEST_ID_HEADER))
        obs_logging.bind_request_context(request_id=request_id)
        return _RequestState(
            request_id=request_id,
            method=metrics.normalize_method(request.method),
            route=_route(),
            started=time.perf_counter(),
            active=False,
        )

    @app.before_request
    def start_request() -> None:
        state = g._obs_request = new_state()
        if record:
            state.active = True
            metrics.HTTP_ACTIVE_REQUESTS.labels(state.method, state.route).inc()
        if spans is not None:
            state.span = start_server_span(spans, request, state.method, state.route)

    @app.after_request
    def finish_request(response: Response) -> Response:
        # None when before_request never ran (e.g. the request context failed early).
        state: _RequestState = g.get("_obs_request") or new_state()
        response.headers[REQUEST_ID_HEADER] = state.request_id
        if not record:
            return response
        seconds = max(time.perf_counter() - state.started, 0.0)
        status = state.status = response.status_code
        metrics.observe_http_request(state.method, state.route, status, seconds)
        fields: dict[str, object] = {
            "http.request.method": state.method,
            "http.route": state.route,
            "url.path": request.path,
            "http.response.status_code": status,
            "duration_ms": round(seconds * 1000.0, 3),
            "client.address": request.remote_addr,
            "user_agent.original": request.headers.get("User-Agent", ""),
        }
        if state.method != request.method:
            fields["http.request.method_original"] = request.method[:32]
        # structlog's fast path (logging.py): the one line per request
        obs_logging.access_logger().info("http.request", **fields)
        return response

    @app.teardown_request
    def end_request(exc: BaseException | None) -> None:
        state: _RequestState | None = g.get("_obs_request")
        if state is not None and state.span is not None:
            started, state.span = state.span, None
            ServerSpans.end(started, state.status, exc)
        if state is not None and state.active:
            state.active = False
            metrics.HTTP_ACTIVE_REQUESTS.labels(state.method, state.route).dec()
        obs_logging.clear_request_context()
