"""Server spans of the backend: FastAPI's own OpenTelemetry tracing (service-specific part of
`tracing.py`; the frontend instruments Flask in its file of the same name).

FastAPI 0.165+ opens the server span itself when it is given a tracer provider
(`FastAPI(telemetry=...)`, fastapi/telemetry/_asgi.py `NativeTelemetry`): the stable HTTP
attributes, the span named `{method} {route}` from the route the router selected (no second
route match), the caller's `traceparent` as parent, `error.type` and an ERROR status on a 5xx
or an exception. It replaced opentelemetry-instrumentation-fastapi, whose ASGI middleware cost
about twice as much per request (docs/performance.md, section 11). What it leaves out, our
middleware adds to the same span (`enrich_server_span`): `client.address`, `client.port`,
`user_agent.original`, and the route of a request refused before routing (a 401).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.trace import TracerProvider

from .metrics import UNMATCHED_ROUTE
from .tracing import UNTRACED_PATHS


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def server_telemetry(provider: TracerProvider | None) -> TelemetryConfig:
    """The `telemetry=` argument of `FastAPI(...)`: server spans from `provider`, nothing else.

    No provider (TELEMETRY_ENABLED=false, OTEL_SDK_DISABLED=true): everything off, also when
    another part of the process installed a global provider. With one: tracing only. FastAPI's
    metrics stay off (the HTTP metrics are Prometheus, `api/observability/metrics.py`), its
    log records too (our logs are structlog lines), and its operation spans (dependencies,
    endpoint, serialization), so a request is one server span plus its DuckDB spans.
    """
    if provider is None:
        return {"tracing": False, "metrics": False, "logs": False}
    return {
        "tracer_provider": provider,
        "tracing": True,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "exclude": _untraced,
    }


def enrich_server_span(
    method: str, route: str, client: tuple[str, int] | None, user_agent: str
) -> None:
    """Add what FastAPI's span lacks to the current server span (no-op without one).

    Called as the request enters our middleware. `route` is the middleware's match
    (`requests.route_template`): it names the span, and the router renames it with the same
    template once it selects the route, so it stays only where the router selected none, e.g.
    when the API key middleware answered first. `method` is already `_OTHER` for a
    non-standard method (then the span name says `HTTP`, as FastAPI's does).
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes: dict[str, Any] = {"user_agent.original": user_agent} if user_agent else {}
    if client:
        attributes["client.address"], attributes["client.port"] = client[0], client[1]
    if route != UNMATCHED_ROUTE:
        attributes["http.route"] = route
        span.update_name(f"{'HTTP' if method == '_OTHER' else method} {route}")
    span.set_attributes(attributes)
