"""Telemetry of the frontend's calls to the backend API (service-specific, frontend only).

- :func:`name_client_span`: the request hook of OpenTelemetry's httpx transport. It names
  every CLIENT span ``{http.request.method} {url.template}`` and sets ``url.template``, the
  backend's route template (``/api/v1/flights/{flight_id}``) that the backend client passes
  with each request in the httpx request extension :data:`URL_TEMPLATE` (semconv: HTTP client
  span names use the template when it is known; the instrumentation alone names them ``GET``).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span

# The httpx request extension that carries the backend route template of a call.
URL_TEMPLATE = "url.template"
# OpenTelemetry's known HTTP methods; any other is named "HTTP" in the span name (semconv).
_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)


def name_client_span(span: Span, request: Any) -> None:
    """httpx instrumentation ``request_hook(span, RequestInfo)``: name the span after the
    call's route template and set ``url.template``. Leaves a call without a template (none
    is made today) with the instrumentation's name."""
    extensions = request.extensions or {}
    template = extensions.get(URL_TEMPLATE)
    if not template or not span.is_recording():
        return
    method = request.method.decode() if isinstance(request.method, bytes) else str(request.method)
    span.update_name(f"{method if method in _KNOWN_METHODS else 'HTTP'} {template}")
    span.set_attribute("url.template", template)
