"""Observability of the backend (docs/observability.md), one module per concern:

- `logging`: structlog set-up; every stdout line is one JSON object.
- `tracing`: OpenTelemetry SDK set-up, FastAPI instrumentation, DuckDB query spans.
- `metrics`: Prometheus metrics (default registry: the backend is one process) and rendering.
- `requests`: the ASGI middleware for request ids, the access line and HTTP metrics.

Kept free of imports here so `api.db` can use `tracing` and `metrics` without cycles.
"""
