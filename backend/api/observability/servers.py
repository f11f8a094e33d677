"""The backend's HTTP server (uvicorn) in the logs: service-specific part of `logging.py`.

uvicorn's loggers propagate to the root handler (no handlers of their own), so its lines are
JSON like ours; its access logger is replaced by our access line (`requests.py`). An exception
the app's 500 handler already logged (with trace ids, `LOGGED_MARK`) is not logged a second
time by uvicorn ("Exception in ASGI application", without them): one line per error.
"""

from __future__ import annotations

import logging

# Set on an exception by the app's 500 handler once it has been logged (api/problems.py).
LOGGED_MARK = "_api_logged"


class _DropLoggedExceptions(logging.Filter):
    """Drops a record whose exception the application has already logged (`LOGGED_MARK`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, LOGGED_MARK, False)


def configure_server_logging(level: str) -> None:
    """Route uvicorn's loggers through the root handler and silence `uvicorn.access`.

    `level` (LOG_LEVEL) is the root's; uvicorn's loggers inherit it. Idempotent.
    """
    del level  # inherited from the root logger
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    error_log = logging.getLogger("uvicorn.error")
    for stale in [f for f in error_log.filters if isinstance(f, _DropLoggedExceptions)]:
        error_log.removeFilter(stale)
    error_log.addFilter(_DropLoggedExceptions())
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
