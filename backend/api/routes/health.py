"""Health probes: /livez (process alive), /readyz and /health (database answers in time).

Plain JSON, not problem+json: probes and load balancers read `status` and `checks`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.utils import suppress_instrumentation

from api.db.database import Database, run_query

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


def check_database(database: Database | None, timeout_seconds: float) -> str:
    """Return "ok" if `SELECT 1` answers within `timeout_seconds`, else a short reason.

    The query runs in a helper thread; on timeout it is interrupted so it cannot pile up.
    """
    if database is None or not database.is_open:
        return "not open"
    try:
        cursor = database.cursor()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    outcome: dict[str, str] = {}

    def probe() -> None:
        try:
            # Probes run every few seconds: keep their query out of the traces.
            with suppress_instrumentation():
                run_query(cursor, "readiness_select_one")
            outcome["result"] = "ok"
        except Exception as exc:
            outcome["result"] = f"error: {type(exc).__name__}"
        finally:
            cursor.close()

    thread = threading.Thread(target=probe, name="readyz-probe", daemon=True)
    thread.start()
    thread.join(timeout_seconds)
    if thread.is_alive():
        cursor.interrupt()
        logger.warning("readiness probe: database did not answer within %s s", timeout_seconds)
        return f"timeout after {timeout_seconds} s"
    return outcome.get("result", "error: no result")


@router.get("/livez")
def livez() -> dict[str, str]:
    """Always 200 {"status": "ok"} while the process serves requests; touches nothing."""
    return {"status": "ok"}


def _readiness(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    database = getattr(request.app.state, "database", None)
    result = check_database(database, settings.readiness_timeout_seconds)
    body: dict[str, Any] = {"status": "ok" if result == "ok" else "fail"}
    body["checks"] = {"database": result}
    return JSONResponse(body, status_code=200 if result == "ok" else 503)


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 {"status": "ok", "checks": {"database": "ok"}}, or 503 naming the failing check."""
    return _readiness(request)


@router.get("/health")
def health(request: Request) -> JSONResponse:
    """Same as /readyz (what Coolify probes)."""
    return _readiness(request)
