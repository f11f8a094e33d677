"""Observability of the frontend: logs, traces, metrics and request ids (docs/observability.md).

One module per concern. Identical in both services (``tests/test_shared_files.py``):

- :mod:`.identity`: ``ServiceInfo``, the service's identity.
- :mod:`.logging`: structlog JSON (or console) lines for every logger; the access line.
- :mod:`.tracing`: the OpenTelemetry SDK, set up once per process (after the gunicorn fork).
- :mod:`.metrics`: the HTTP server metrics and build info, multiprocess-safe across workers.
- :mod:`.redaction`: the secret-redaction rules of the logs.
- :mod:`.server_spans`: the server spans' rules (name, attributes, status).

The frontend's own:

- :mod:`.servers`: gunicorn's loggers (``logconfig_dict``).
- :mod:`.instrumentation`: a WSGI request's server span attributes (the request hooks open it).
- :mod:`.requests`: per-request context (request id), access line, HTTP server metrics.
- :mod:`.backend_calls`: client span names and metrics of the calls to the backend.

This module holds the package version.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

from .identity import ServiceInfo

__all__ = ["ServiceInfo", "service_version"]

DIST_NAME = "flights-frontend"
_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@cache
def service_version() -> str:
    """The package version (``pyproject.toml``), e.g. ``"0.1.0"``; ``"unknown"`` if unreadable.

    The package is run from its folder, not installed, so the installed metadata is usually
    absent: fall back to reading ``pyproject.toml`` next to the package (it ships in the image).
    """
    try:
        return metadata.version(DIST_NAME)
    except metadata.PackageNotFoundError:
        pass
    try:
        with _PYPROJECT.open("rb") as fh:
            return str(tomllib.load(fh)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"
