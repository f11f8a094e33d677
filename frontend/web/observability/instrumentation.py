"""Server spans of the frontend: what a Flask (WSGI) request gives `server_spans.ServerSpans`
(service-specific; the backend's file of the same name does it for an ASGI request).

One SERVER span per HTTP request outside `UNTRACED_PATHS`, opened by our request hooks
(`requests.py`: started in the first `before_request`, ended in `teardown_request`, so the
access line, the 500 handler's log line and every backend call's client span are inside it)
with the rules of `server_spans.py`.

Why our own and not opentelemetry-instrumentation-flask (0.66b1, which the frontend used up to
session 19): per request it builds the attributes twice (`collect_request_attributes` in its
WSGI wrapper and in `_before_request`), matches the excluded URLs three times against
`request.url` (the full URL, built for it), sets every attribute a second time, attaches a
second context for SQLCommenter and wraps `start_response` (its cost: docs/performance.md,
section 14).
It also took the Host header whole as `server.address` (`localhost:8080`, with
`server.port` 80 from the socket); here it is split as semconv says (`host_attributes`).
Differences kept from it: the span starts once Flask has matched the route (the WSGI
middlewares before it, `TrustedProxyFix` and `AllowedHosts`, are outside: a request refused
for its host, a 400 with no access line either, has no span), and there is no `client.port`
(behind the proxy it would be the proxy's).
"""

from __future__ import annotations

from flask import Request
from opentelemetry.instrumentation.wsgi import wsgi_getter

from .server_spans import ServerSpans, Started, host_attributes


def start_server_span(
    spans: ServerSpans, request: Request, method: str, route: str
) -> Started | None:
    """Start the server span of the Flask `request` and make it current; None for an untraced
    path. `method`, `route`: the request hooks' labels (`_OTHER`, `unmatched`). Reads the WSGI
    environ as `TrustedProxyFix` left it (a trusted proxy's scheme, host and client address)."""
    environ = request.environ
    scheme = environ.get("wsgi.url_scheme", "http")
    # The Host header, else the server's own name and port (PEP 3333), as the backend does.
    host = (
        environ.get("HTTP_HOST")
        or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    )
    protocol = environ.get("SERVER_PROTOCOL", "")
    return spans.start(
        method=method,
        route=route,
        path=request.path,
        carrier=environ,
        getter=wsgi_getter,
        scheme=scheme,
        server=host_attributes(host, scheme),
        query=environ.get("QUERY_STRING", ""),
        protocol=protocol[5:] if protocol.startswith("HTTP/") else "",
        method_original=request.method[:32],
        client_address=request.remote_addr,
        client_port=None,  # behind the proxy it would be the proxy's
        user_agent=environ.get("HTTP_USER_AGENT", ""),
    )
