"""Observability of the backend (docs/observability.md), one module per concern.

Identical in both services (`tests/test_shared_files.py`):

- `identity`: `ServiceInfo`, the service's identity.
- `logging`: structlog set-up; every stdout line is one JSON object; the access line.
- `tracing`: OpenTelemetry SDK set-up, once per process.
- `metrics`: HTTP server metrics and build info (default registry: the backend is one process).
- `redaction`: the secret-redaction rules of the logs.
- `server_spans`: the server spans' rules (name, attributes, status).

The backend's own:

- `servers`: uvicorn's loggers.
- `instrumentation`: an ASGI request's server span attributes (the middleware opens it).
- `database`: DuckDB query spans and metrics, database file sizes.
- `requests`: the ASGI middleware for request ids, the server span, the access line and HTTP
  metrics.
- `switch`: the process-wide `TELEMETRY_ENABLED` switch.

Kept free of imports here so `api.db` can use `database` and `metrics` without cycles.
"""
