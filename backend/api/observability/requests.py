"""Per-request telemetry as one pure ASGI middleware (BaseHTTPMiddleware is slow and breaks
contextvars): request id, server span, access log line and HTTP metrics
(docs/observability.md).

For every HTTP request `RequestTelemetryMiddleware`:

1. clears structlog's context variables (state of an earlier request must not leak), takes
   `X-Request-ID` from the caller when it matches `^[A-Za-z0-9._-]{8,128}$`, otherwise makes a
   uuid4 hex, binds it as `request_id` and stores it in `scope["state"]["request_id"]` (the
   500 handler, which runs outside this middleware, reads it there);
2. adds `X-Request-ID` to the response;
3. opens the server span (`instrumentation.start_server_span`; not for the probes and /metrics) and
   keeps it current until the access line is written, stored in
   `scope["state"]["server_span"]` for the 500 handler's log line;
4. counts the request in `http_server_active_requests` while it runs and observes
   `http_server_request_duration_seconds` when it ends;
5. writes ONE access line: event `http.request`, logger `api.access`, with
   `http.request.method`, `http.route`, `url.path`, `http.response.status_code`,
   `duration_ms` (float, ms), `client.address`, `user_agent.original`; written with the
   others of the last few milliseconds by a writer thread (`logging._StdoutLines`).

`http.route` is the matched route's template (`/api/v1/flights/{flight_id}`), found by
matching the app's routes the way the router will; `unmatched` when no route matches. A
method outside the standard set is `_OTHER`. Both keep label values bounded.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from cachetools import LRUCache
from fastapi.routing import iter_route_contexts
from opentelemetry.trace import INVALID_SPAN, Span
from starlette.datastructures import MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.observability import metrics
from api.observability.instrumentation import start_server_span
from api.observability.logging import access_logger, bind_request_context
from api.observability.server_spans import ServerSpans

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID if it is well-formed, else a new uuid4 hex (32 characters)."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def method_label(method: str) -> str:
    """`method` if it is a standard HTTP method, else `_OTHER` (bounded label values).

    Unlike `metrics.normalize_method` (the frontend's rule) this does not upper-case: HTTP
    methods are case-sensitive (RFC 9110 9.1), so `get` is not GET."""
    return method if method in metrics.KNOWN_METHODS else metrics.OTHER_METHOD


def route_template(scope: Scope) -> str:
    """The template of the route that will handle `scope`, or `unmatched`.

    Matches the app's routes like the router does. A path that matches a route but not its
    method (405) keeps that route's template. Known before the request runs, so the
    active-requests gauge can be labelled with it.
    """
    app = scope.get("app")
    if app is None:
        return metrics.UNMATCHED_ROUTE
    partial: str | None = None
    for context in iter_route_contexts(app.router.routes):
        match, _ = context.matches(scope)
        template = getattr(context, "path_format", None) or getattr(context, "path", None)
        if match == Match.FULL:
            return str(template) if template else metrics.UNMATCHED_ROUTE
        if match == Match.PARTIAL and partial is None and template:
            partial = str(template)
    return partial or metrics.UNMATCHED_ROUTE


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


class RequestTelemetryMiddleware:
    """Pure ASGI middleware: request id, server span, access line, HTTP metrics (see the
    module doc).

    With `record=False` (TELEMETRY_ENABLED=false) it only handles the request id: no route
    matching, no span, no metrics, no access line. `spans`: where the server spans come from
    (None: no tracer provider, no spans).
    """

    def __init__(self, app: ASGIApp, record: bool = True, spans: ServerSpans | None = None) -> None:
        self.app = app
        self.record = record
        self.spans = spans if record else None
        # (method, path) -> route template: matching every route per request was ~8 % of the
        # backend's CPU on a cached endpoint (py-spy, docs/performance.md). Bounded: paths
        # with ids (/api/v1/flights/123) are many, and an evicted one is just matched again.
        self._routes: LRUCache[tuple[str, str], str] = LRUCache(maxsize=4096)

    def route_of(self, scope: Scope) -> str:
        """`route_template(scope)`, memoised per (method, path). Called from the event loop's
        thread only, so the cache needs no lock."""
        key = (scope.get("method", ""), scope.get("path", ""))
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = route_template(scope)
        return route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        request_id = request_id_from(headers)
        bind_request_context(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id

        if not self.record:

            async def send_request_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
                await send(message)

            await self.app(scope, receive, send_request_id)
            return

        method = method_label(scope.get("method", ""))
        route = self.route_of(scope)
        sent: int | None = None  # the status of the response that was started, if any
        client = scope.get("client")
        user_agent = _header(headers, b"user-agent")
        error: BaseException | None = None

        async def send_with_request_id(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.start":
                sent = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        active = metrics.HTTP_ACTIVE_REQUESTS.labels(method, route)
        active.inc()
        started = time.perf_counter()
        span = (
            start_server_span(self.spans, scope, method, route, client, user_agent)
            if self.spans
            else None
        )
        if span is not None:
            scope["state"]["server_span"] = span[0]
        try:
            await self.app(scope, receive, send_with_request_id)
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                active.dec()
                status = 500 if sent is None else sent  # the app raised before it responded
                seconds = time.perf_counter() - started
                metrics.observe_http_request(method, route, status, seconds)
                fields: dict[str, Any] = {
                    "http.request.method": method,
                    "http.route": route,
                    "url.path": scope.get("path", ""),
                    "http.response.status_code": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "client.address": client[0] if client else "",
                    "user_agent.original": user_agent,
                }
                # structlog's fast path (logging.py): the one line per request
                access_logger().info("http.request", **fields)
            finally:
                # Ended last, so the line and the metrics above link to it; ended even when
                # writing the line fails (a closed stdout).
                if span is not None:
                    ServerSpans.end(span, sent, error)


def server_span_of(scope: Scope) -> Span:
    """The server span the middleware opened for this request (ended once the middleware
    returns), or `INVALID_SPAN`: for `trace.use_span` around a log line outside it."""
    state = scope.get("state") or {}
    value = state.get("server_span") if isinstance(state, dict) else None
    return value if isinstance(value, Span) else INVALID_SPAN


def request_id_of(scope: Scope) -> str | None:
    """The request id the middleware assigned to this request (None outside the middleware)."""
    state = scope.get("state") or {}
    value = state.get("request_id") if isinstance(state, dict) else None
    return value if isinstance(value, str) else None
