"""Health endpoints (JSON, no CSRF): ``/livez``, ``/readyz`` and ``/health``.

Served by gunicorn's probe lane (web/worker.py): they never wait for a thread behind page
requests. Bodies: ``{"status", "checks": {"backend": ...}, "circuit_breaker": "closed" |
"open" | "half_open"}``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from web.backend_client import BackendUnavailable
from web.views import backend

bp = Blueprint("health", __name__)


@bp.get("/livez")
def livez() -> ResponseReturnValue:
    """200 ``{"status": "ok"}`` while the process can serve requests; touches nothing else."""
    return jsonify(status="ok")


def _backend_check() -> str:
    """ "ok" when the backend's ``/readyz`` answers ready within the readiness timeout, else
    the reason (e.g. "connection refused"). While the circuit breaker is open the answer is
    immediate ("circuit open ..."): the probe makes no call and waits for nothing."""
    try:
        backend().ready()
    except BackendUnavailable as exc:
        return exc.message
    return "ok"


def _answer(status: str, backend_check: str, code: int) -> ResponseReturnValue:
    response = jsonify(
        status=status,
        checks={"backend": backend_check},
        # This worker's circuit breaker around backend calls (web/circuit_breaker.py).
        circuit_breaker=backend().breaker.state,
    )
    response.status_code = code
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """200 when the backend's ``/readyz`` answers ready within the readiness timeout, else
    503 ``{"status": "fail", "checks": {"backend": "<reason>"}}``."""
    check = _backend_check()
    return _answer("ok" if check == "ok" else "fail", check, 200 if check == "ok" else 503)


@bp.get("/health")
def health() -> ResponseReturnValue:
    """What Coolify probes: 200 while this process can serve pages, whatever the backend does.

    Coolify's proxy takes unhealthy containers out of routing: tying this to the backend would
    replace the friendly 503 page with the proxy's error during a backend outage or deploy,
    and a frontend deploy could never finish while the backend is down. The backend's state
    is still reported in ``checks`` (and by ``/readyz``, for monitors and alerts).
    """
    check = _backend_check()
    return _answer("ok" if check == "ok" else "degraded", check, 200)
