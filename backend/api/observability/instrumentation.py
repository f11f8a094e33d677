"""Server spans of the backend: what an ASGI request gives `server_spans.ServerSpans`
(service-specific; the frontend's file of the same name does it for a WSGI request).

One SERVER span per HTTP request outside `UNTRACED_PATHS`, opened by our request middleware
(`requests.py`) with the rules of `server_spans.py`; this module only reads the scope.

Why our own and not FastAPI's (`FastAPI(telemetry=...)`, fastapi/telemetry/_asgi.py
`NativeTelemetry`, 0.165.0): that one is built for every case FastAPI serves (websockets,
mounted apps, operation spans, logs and metrics hooks in the router), and per request it
wraps `receive` and `send`, parses the headers twice, attaches three contexts and lets the
router rename the span. Our middleware already knows the route before the request runs
(`requests.route_template`), so the span starts with every attribute it will have but the
status. Measured in one process, one request of a cached answer cost about 140 us less
(docs/performance.md, section 13). The attributes follow FastAPI's rules (`server_spans.py`
cites its lines), plus `client.address`, `client.port` and `user_agent.original`, which it
leaves out. Where ours differ: the instrumentation scope is `api`; `http.route` is set also
when a middleware answered before routing (a 401); `url.query` stays as sent unless a
sensitive parameter is in it (FastAPI re-encodes every query); the known methods are the
fixed set of `metrics.KNOWN_METHODS` (no `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`, which
would make the metrics' label values unbounded too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.propagators.textmap import Getter
from starlette.types import Scope

from .server_spans import ServerSpans, Started, host_attributes

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
    """`server.address` and `server.port` from the Host header (`host_attributes`), else from
    the server's socket (`scope["server"]`); `{}` when neither gives an address."""
    authority = next((v for k, v in scope.get("headers", ()) if k == b"host"), None)
    if authority is not None:
        return host_attributes(authority.decode("latin-1"), scope.get("scheme", "http"))
    address, port = scope.get("server") or (None, None)
    if address is None:
        return {}
    return {"server.address": address, "server.port": port} if port else {"server.address": address}


def start_server_span(
    spans: ServerSpans,
    scope: Scope,
    method: str,
    route: str,
    client: tuple[str, int] | None,
    user_agent: str,
) -> Started | None:
    """Start the server span of the ASGI request `scope` and make it current; None for an
    untraced path. `method`, `route`: the middleware's labels (`_OTHER`, `unmatched`)."""
    return spans.start(
        method=method,
        route=route,
        path=scope.get("path", ""),
        carrier=scope.get("headers", ()),
        getter=_HEADERS,
        scheme=scope.get("scheme", "http"),
        server=server_attributes(scope),
        query=scope.get("query_string", b"").decode("latin-1"),
        protocol=scope.get("http_version") or "",
        method_original=scope.get("method", ""),
        client_address=client[0] if client else None,
        client_port=client[1] if client else None,
        user_agent=user_agent,
    )
