"""The frontend's HTTP server (gunicorn) in the logs: service-specific part of `logging.py`.

Under gunicorn the master configures logging through `logconfig_dict` = `gunicorn_logconfig`
(before any worker forks), so gunicorn's own lines (booting, worker start/exit, signals) are
JSON too; workers inherit it and `configure_logging` (called by the app factory) re-applies
it idempotently, which also covers tests and `flask run`. gunicorn's access log is replaced
by our access line (`requests.py`).
"""

from __future__ import annotations

import logging
from typing import Any

from .identity import ServiceInfo


def configure_server_logging(level: str) -> None:
    """gunicorn.error keeps its messages but renders them through the root handler (at
    `level`, LOG_LEVEL); gunicorn.access is silenced; httpx's per-request INFO lines too (the
    access line, traces and metrics already cover every backend call). Idempotent."""
    error_log = logging.getLogger("gunicorn.error")
    for handler in list(error_log.handlers):
        error_log.removeHandler(handler)
    error_log.propagate = True
    error_log.setLevel(level.upper())
    access_log = logging.getLogger("gunicorn.access")
    access_log.handlers.clear()
    access_log.propagate = False
    access_log.disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)


def gunicorn_logconfig(
    info: ServiceInfo, *, log_format: str = "json", level: str = "INFO"
) -> dict[str, Any]:
    """The `logconfig_dict` for gunicorn.conf.py: everything to stdout through structlog.

    Complete on purpose: gunicorn merges it shallowly into its own defaults, so any section
    left out (root, handlers, formatters) would bring back gunicorn's plain-text handlers.
    """
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": level, "handlers": ["structlog"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            "httpx": {"level": "WARNING"},
        },
        "handlers": {
            "structlog": {
                "()": f"{__package__}.logging.make_handler",
                "service_name": info.name,
                "service_version": info.version,
                "environment": info.environment,
                "log_format": log_format,
            }
        },
        "formatters": {},
    }
