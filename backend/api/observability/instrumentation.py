"""Server spans of the backend, opened by our request middleware (service-specific part of
`tracing.py`; the frontend instruments Flask in its file of the same name).

One SERVER span per HTTP request outside `UNTRACED_PATHS`, with the stable HTTP semantic
conventions: named `{method} {route}` (`{method}` when no route matches; `HTTP` for a
non-standard method), the caller's `traceparent` as parent (the propagators of
`OTEL_PROPAGATORS`), `error.type` and an ERROR status on a 5xx or an exception, and an
`exception` event for an exception.

Why our own and not FastAPI's (`FastAPI(telemetry=...)`, fastapi/telemetry/_asgi.py
`NativeTelemetry`, 0.165.0): that one is built for every case FastAPI serves (websockets,
mounted apps, operation spans, logs and metrics hooks in the router), and per request it
wraps `receive` and `send`, parses the headers twice, attaches three contexts and lets the
router rename the span. Our middleware already knows the route before the request runs
(`requests.route_template`), so the span starts with every attribute it will have but the
status. Measured in one process, one request of a cached answer cost about 140 us less
(docs/performance.md, section 13). The attributes follow FastAPI's rules (the code below
cites its lines), plus `client.address`, `client.port` and `user_agent.original`, which it
leaves out. Where ours differ: the instrumentation scope is `api`; `http.route` is set also
when a middleware answered before routing (a 401); `url.query` stays as sent unless a
sensitive parameter is in it (FastAPI re-encodes every query); the known methods are the
fixed set of `metrics.KNOWN_METHODS` (no `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`, which
would make the metrics' label values unbounded too).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import Token
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, StatusCode, TracerProvider
from starlette.types import Scope

from api import __version__

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

Headers = Iterable[tuple[bytes, bytes]]


class _ASGIHeaders(Getter[Headers]):
    """Reads the propagation headers from an ASGI scope's header list (lower-case bytes names).

    Every value of a repeated header, like FastAPI's getter (_asgi.py `_HeadersGetter`); the
    values of `baggage` joined by commas, since the baggage propagator reads only the first.
    """

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for header, value in carrier if header == name]
        if not values:
            return None
        return [",".join(values)] if name == b"baggage" else values

    def keys(self, carrier: Headers) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier]


_HEADERS = _ASGIHeaders()


def server_attributes(scope: Scope) -> dict[str, Any]:
    """`server.address` and `server.port` from the Host header, else from the server's socket;
    `{}` when the Host header is malformed (it must not fail the request). The rules of
    FastAPI 0.165.0 (_asgi.py `_server_attributes`)."""
    authority = next((v for k, v in scope.get("headers", ()) if k == b"host"), None)
    if authority is None:
        address, port = scope.get("server") or (None, None)
    else:
        try:
            url = urlsplit("//" + authority.decode("latin-1"))
            address, port = url.hostname, url.port
        except ValueError:
            return {}
        if url.username is not None or url.path or url.query or url.fragment:
            return {}
        if port is None:
            port = _DEFAULT_PORTS.get(scope.get("scheme", "http"))
    if address is None:
        return {}
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
    """Opens and closes the backend's server spans (the request middleware calls it)."""

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("api", __version__, schema_url=SCHEMA_URL)

    def start(
        self,
        scope: Scope,
        method: str,
        route: str,
        client: tuple[str, int] | None,
        user_agent: str,
    ) -> tuple[Span, Token[Context]] | None:
        """Start the server span of `scope` and make it current; None for an untraced path.

        `method` is the middleware's label (`_OTHER` for a non-standard method), `route` its
        route template or `unmatched`. Returns the span and the context token `end` needs.
        """
        path = scope.get("path", "")
        if path in UNTRACED_PATHS:
            return None
        headers = scope.get("headers", ())
        parent = propagate.extract(headers, getter=_HEADERS)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.scheme": scope.get("scheme", "http"),
            "url.path": path,
            **server_attributes(scope),
        }
        if scope.get("http_version"):
            attributes["network.protocol.version"] = scope["http_version"]
        if query := scope.get("query_string", b"").decode("latin-1"):
            attributes["url.query"] = redacted_query(query)
        if method == OTHER_METHOD:
            attributes["http.request.method_original"] = scope.get("method", "")
        if client:
            attributes["client.address"], attributes["client.port"] = client[0], client[1]
        if user_agent:
            attributes["user_agent.original"] = user_agent
        name = "HTTP" if method == OTHER_METHOD else method
        if route != UNMATCHED_ROUTE:
            attributes["http.route"] = route
            name = f"{name} {route}"
        span = self._tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    @staticmethod
    def end(
        started: tuple[Span, Token[Context]], status: int | None, error: BaseException | None
    ) -> None:
        """End a span from `start`: the status of the response that was started (None if none
        was) and the exception that ended the request, if any (also recorded as an
        `exception` event). An `Exception` without a response gets 500: Starlette's error
        handler, outside the middleware, answers it so; e.g. a cancelled request gets none."""
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
        otel_context.detach(token)
        span.end()
