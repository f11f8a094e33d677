"""Health probes: /livez (process alive), /readyz (can serve: database, data, writes), /health.

Plain JSON, not problem+json: probes and load balancers read `status` and `checks`.

Every probe is `async` and waits for nothing: it runs on the event loop, never in the request
threadpool where it would queue behind heavy API requests, and reports the latest outcome of
checks that run in their own threads (api/db/checks.py). tests/test_probes_under_load.py
measures them under 80 concurrent heavy requests.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.db.checks import check_writes
from api.db.lifecycle import lifecycle_of

router = APIRouter(tags=["health"])

DRAINING = "draining: SIGTERM received, finishing requests before the process stops"


@router.get("/livez")
async def livez() -> dict[str, str]:
    """Always 200 {"status": "ok"} while the process serves requests; touches nothing."""
    return {"status": "ok"}


async def readiness_checks(request: Request) -> dict[str, str]:
    """The checks of /readyz, each "ok" or a one-line reason (api/db/checks.py).

    While the database is not open yet (opening, replaying its WAL, waiting for another
    process's lock, migrating, first full read) only `database` is reported: its start-up
    state. After SIGTERM (`app.state.draining`) a `shutdown` check fails too, so /readyz and
    /health answer 503 at once while in-flight requests finish.
    """
    state = request.app.state
    lifecycle = lifecycle_of(state)
    database, heartbeat = lifecycle.database, lifecycle.heartbeat
    if database is None or heartbeat is None:
        checks = {"database": lifecycle.step.status()}
    else:
        checks = {"database": heartbeat.result()}
    if getattr(state, "draining", False):
        # SIGTERM received (api/__main__.py): still serving, but about to stop.
        checks["shutdown"] = DRAINING
    if database is None:
        return checks
    lifecycle.data_check.refresh(database)  # in the background when due; never waited for
    checks["data"] = lifecycle.data_check.result
    checks["writes"] = check_writes()
    return checks


def _answer(checks: dict[str, str], starting: bool = False) -> JSONResponse:
    ok = all(value == "ok" for value in checks.values())
    status = "ok" if ok else ("starting" if starting else "fail")
    body: dict[str, Any] = {"status": status, "checks": checks}
    return JSONResponse(body, status_code=200 if ok or starting else 503)


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 {"status": "ok", "checks": {"database": "ok", "data": "ok", "writes": "ok"}}, or
    503 {"status": "fail", "checks": {...}} where each failing check names its reason."""
    return _answer(await readiness_checks(request))


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """What Coolify probes: like /readyz, but 200 {"status": "starting"} while the database is
    still being opened (waiting for another process's lock, replaying its WAL, migrating,
    the first full read). In a rolling deploy Coolify stops the old container (which releases
    the lock) only once the new one is healthy: requiring the database here would deadlock
    the deploy; and a long WAL replay must not look like a dead container."""
    checks = await readiness_checks(request)
    starting = lifecycle_of(request.app.state).database is None and "shutdown" not in checks
    return _answer(checks, starting=starting)
