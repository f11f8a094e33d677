"""Health endpoints (JSON, no CSRF): ``/livez``, ``/readyz`` and ``/health``."""

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


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """200 when the backend's ``/readyz`` answers ready within the readiness timeout, else
    503 ``{"status": "fail", "checks": {"backend": "<reason>"}}``."""
    try:
        backend().ready()
    except BackendUnavailable as exc:
        response = jsonify(status="fail", checks={"backend": exc.message})
        response.status_code = 503
        response.headers["Cache-Control"] = "no-store"
        return response
    response = jsonify(status="ok", checks={"backend": "ok"})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/health")
def health() -> ResponseReturnValue:
    """What Coolify probes: the same answer as ``/readyz``."""
    return readyz()
