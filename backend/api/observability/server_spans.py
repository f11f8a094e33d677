"""Server spans: one SERVER span per HTTP request, with the same rules in both services.

This file is identical in both services (`tests/test_shared_files.py`). Each service's request
telemetry opens and closes the spans (the backend's ASGI middleware, the frontend's Flask
hooks); how its server's request (an ASGI scope, a WSGI environ) becomes the arguments of
`ServerSpans.start` lives in the service's `instrumentation.py`.

The rules are the stable HTTP semantic conventions as FastAPI 0.165.0 applies them
(fastapi/telemetry/_asgi.py, `NativeTelemetry`; the functions below cite its lines): named
`{method} {route}` (`{method}` when no route matches; `HTTP` for a non-standard method), the
caller's `traceparent` as parent (the propagators of `OTEL_PROPAGATORS`), every attribute but
the status known when the span starts, `error.type` and an ERROR status on a 5xx or an
exception, and an `exception` event for an exception. Why not the frameworks' own
instrumentation (FastAPI's, opentelemetry-instrumentation-flask): both are built for every case
their framework serves and cost a request several times what the SDK's span itself costs
(docs/performance.md, sections 13 and 14).
"""

from __future__ import annotations

from contextvars import Token
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, StatusCode, TracerProvider

from .metrics import OTHER_METHOD, UNMATCHED_ROUTE
from .tracing import UNTRACED_PATHS

# The stable HTTP conventions' schema, as FastAPI 0.165.0 states it (_asgi.py, _SCHEMA_URL).
SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
# Query parameters whose values semconv says to redact in `url.query` (http-spans.md,
# "url.query"; the list FastAPI 0.165.0 uses, _asgi.py `_SENSITIVE_QUERY_PARAMETERS`).
SENSITIVE_QUERY_PARAMETERS = frozenset(
    {"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "sig", "X-Goog-Signature"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}

# What `ServerSpans.start` returns and `ServerSpans.end` takes: the span and its context token.
Started = tuple[Span, Token[Context]]


def host_attributes(authority: str, scheme: str) -> dict[str, Any]:
    """`server.address` and `server.port` from a Host header's value (`example.org:8443`,
    `[::1]`; the scheme's default port when none is given); `{}` when it is malformed (it must
    not fail the request). The rules of FastAPI 0.165.0 (_asgi.py `_server_attributes`)."""
    try:
        url = urlsplit("//" + authority)
        address, port = url.hostname, url.port
    except ValueError:
        return {}
    if url.username is not None or url.path or url.query or url.fragment or not address:
        return {}
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
    return {"server.address": address, "server.port": port} if port else {"server.address": address}


def redacted_query(query: str) -> str:
    """`url.query`: the query string as sent, unless it holds one of
    `SENSITIVE_QUERY_PARAMETERS` (perhaps percent-encoded): then decoded, those values
    replaced by `REDACTED` and encoded again, as FastAPI does (_asgi.py, `url.query`)."""
    if "%" not in query and not any(name in query for name in SENSITIVE_QUERY_PARAMETERS):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k in SENSITIVE_QUERY_PARAMETERS for k, _ in pairs):
        return query
    return urlencode([(k, "REDACTED" if k in SENSITIVE_QUERY_PARAMETERS else v) for k, v in pairs])


def exception_type(exc: BaseException) -> str:
    """`error.type` of an exception: its qualified class name, with the module unless builtin
    (FastAPI 0.165.0, _api.py `_exception_type`; e.g. `RuntimeError`)."""
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


class ServerSpans:
    """Opens and closes a service's server spans (its request telemetry calls it)."""

    def __init__(self, provider: TracerProvider, scope: str, version: str) -> None:
        """`scope`, `version`: the instrumentation scope of the spans (the service's package)."""
        self._tracer = provider.get_tracer(scope, version, schema_url=SCHEMA_URL)

    def start(
        self,
        *,
        method: str,
        route: str,
        path: str,
        carrier: Any,
        getter: Getter[Any],
        scheme: str,
        server: dict[str, Any],
        query: str,
        protocol: str,
        method_original: str,
        client_address: str | None,
        client_port: int | None,
        user_agent: str,
    ) -> Started | None:
        """Start the server span of a request and make it current; None for an untraced path
        (`UNTRACED_PATHS`). Returns what `end` needs.

        `method` is the request telemetry's label (`_OTHER` for a non-standard method, then
        `method_original` is recorded), `route` its route template or `unmatched`; `carrier`
        and `getter` hold the request's headers for the propagators (the parent);
        `server` is `host_attributes` or the server's socket; `query` the raw query string,
        `protocol` the HTTP version (`1.1`), both empty when unknown; a client field that is
        empty or None is left out.
        """
        if path in UNTRACED_PATHS:
            return None
        parent = propagate.extract(carrier, getter=getter)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.scheme": scheme,
            "url.path": path,
            **server,
        }
        if protocol:
            attributes["network.protocol.version"] = protocol
        if query:
            attributes["url.query"] = redacted_query(query)
        name = "HTTP" if method == OTHER_METHOD else method
        if method == OTHER_METHOD:
            attributes["http.request.method_original"] = method_original
        if client_address:
            attributes["client.address"] = client_address
        if client_port is not None:
            attributes["client.port"] = client_port
        if user_agent:
            attributes["user_agent.original"] = user_agent
        if route != UNMATCHED_ROUTE:
            attributes["http.route"] = route
            name = f"{name} {route}"
        span = self._tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    @staticmethod
    def end(started: Started, status: int | None, error: BaseException | None) -> None:
        """End a span from `start`: the status of the response that was started (None if none
        was) and the exception that ended the request, if any (also recorded as an
        `exception` event). An `Exception` without a response gets 500: both frameworks'
        error handlers answer it so; e.g. a cancelled request gets none."""
        span, token = started
        if status is None and isinstance(error, Exception):
            status = 500
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        if error is not None or status is None or status >= 500:
            span.set_attribute(
                "error.type",
                exception_type(error) if error is not None else str(status or "incomplete"),
            )
            if error is not None:
                span.record_exception(error)
            span.set_status(StatusCode.ERROR)
        try:
            span.end()
        finally:  # whatever happens, the next request on this thread starts without it
            otel_context.detach(token)
