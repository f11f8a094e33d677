"""Exit codes of `python -m api` and the one-line report of a fatal start-up failure.

- 0: clean stop (SIGTERM) or command done.
- 1: runtime failure, e.g. the database stayed locked by another process past
  DB_LOCK_TIMEOUT_SECONDS (stop the other backend process).
- 2: invalid configuration or usage (fix the variable named in the message).
- 3: server start-up failure (uvicorn's code, e.g. the port is in use).
- 4: the database file cannot be opened: corrupt header, truncated, a directory, an
  unwritable directory, a write-ahead log that cannot be replayed, a parent path that is a
  file, a schema that cannot be read. Restore or move the file named in the log line; a
  restart alone cannot help.

A distinct code lets a restart policy or an operator tell "broken file" (4) from "try again"
(1, 3), and the log line says which file and why, in one JSON object (no stack trace).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

EXIT_OK = 0
EXIT_RUNTIME_FAILURE = 1
EXIT_CONFIGURATION = 2
EXIT_SERVER_START = 3
EXIT_DATABASE_UNUSABLE = 4


def report_fatal(event: str, exit_code: int, **fields: Any) -> None:
    """Log one critical JSON line: `event`, `exit_code` and `fields` (no traceback)."""
    structlog.get_logger("api.startup").critical(event, exit_code=exit_code, **fields)


def exit_now(exit_code: int) -> None:
    """End the process at once with `exit_code` after flushing the logs.

    For failures found by a background thread (the database opener) while uvicorn serves the
    probes: uvicorn's own shutdown path would end with 0. Nothing is open that needs closing.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
