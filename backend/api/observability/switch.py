"""The process-wide telemetry switch (`TELEMETRY_ENABLED`, docs/observability.md).

Set once by the app factory from the settings. When off: no tracer provider and no server
spans (no spans at all), no access line and no HTTP metrics in the request
middleware (it only handles `X-Request-ID`), and `run_query` runs statements without a span or
a metric observation. Logs (other than the access line) and `GET /metrics` (build info and
the database file sizes) stay. The benchmark (`make bench`) measures the difference.
"""

from __future__ import annotations

_enabled = True


def enabled() -> bool:
    """Whether per-request and per-query telemetry is recorded in this process."""
    return _enabled


def set_enabled(value: bool) -> None:
    """Turn telemetry on or off for this process (the app factory does, from the settings)."""
    global _enabled
    _enabled = value
