"""Observability of the frontend: logs, traces, metrics and request ids (docs/observability.md).

One module per concern:

- :mod:`web.observability.logging`: structlog JSON (or console) lines for every logger,
  gunicorn's included.
- :mod:`web.observability.tracing`: the OpenTelemetry SDK, set up once per process (after the
  gunicorn fork).
- :mod:`web.observability.metrics`: Prometheus metrics, multiprocess-safe across workers.
- :mod:`web.observability.requests`: per-request context (request id), access line, HTTP
  server metrics.

This module holds what they share: the service's identity.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

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


@dataclass(frozen=True)
class ServiceInfo:
    """Who is emitting telemetry: the same values in logs, trace resources and build info."""

    name: str  # service.name, e.g. "flights-frontend"
    version: str  # service.version, e.g. "0.1.0"
    environment: str  # deployment.environment.name (APP_ENV), e.g. "production"
    git_commit: str = "unknown"
