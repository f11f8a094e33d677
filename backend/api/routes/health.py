"""Health probes: /livez (process alive), /readyz (database answers in time) and /health.

Plain JSON, not problem+json: probes and load balancers read `status` and `checks`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.utils import suppress_instrumentation

from api.db.database import WAITING_FOR_LOCK, Database, run_query

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
async def livez() -> dict[str, str]:  # async: answers even when the threadpool is saturated
    """Always 200 {"status": "ok"} while the process serves requests; touches nothing."""
    return {"status": "ok"}


def database_check(request: Request) -> str:
    """ "ok", or why the database is not ready: its start-up state (e.g. waiting for another
    process's lock) or the failed/late `SELECT 1`."""
    database = getattr(request.app.state, "database", None)
    if database is None:
        return str(getattr(request.app.state, "database_status", "not open"))
    return check_database(database, request.app.state.settings.readiness_timeout_seconds)


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 {"status": "ok", "checks": {"database": "ok"}}, or 503 naming the failing check."""
    result = database_check(request)
    body: dict[str, Any] = {"status": "ok" if result == "ok" else "fail"}
    body["checks"] = {"database": result}
    return JSONResponse(body, status_code=200 if result == "ok" else 503)


@router.get("/health")
def health(request: Request) -> JSONResponse:
    """What Coolify probes: like /readyz, but 200 {"status": "starting"} while the database
    waits for another process's lock. In a rolling deploy Coolify stops the old container
    (which releases the lock) only once the new one is healthy: requiring the database here
    would deadlock the deploy."""
    result = database_check(request)
    if result == WAITING_FOR_LOCK:
        return JSONResponse({"status": "starting", "checks": {"database": result}})
    body: dict[str, Any] = {"status": "ok" if result == "ok" else "fail"}
    body["checks"] = {"database": result}
    return JSONResponse(body, status_code=200 if result == "ok" else 503)
