"""``GET /metrics``: Prometheus exposition of all gunicorn workers (docs/observability.md).

With ``METRICS_TOKEN`` set, the scraper must send ``Authorization: Bearer <token>``; anything
else gets 401 with ``WWW-Authenticate: Bearer``. The comparison is constant-time.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue

from web.observability import metrics
from web.settings import Settings

bp = Blueprint("metrics", __name__)


def _authorized(settings: Settings) -> bool:
    if settings.METRICS_TOKEN is None:
        return True
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    expected = settings.METRICS_TOKEN.get_secret_value().encode()
    return secrets.compare_digest(credentials.strip().encode(), expected)


@bp.get("/metrics")
def scrape() -> ResponseReturnValue:
    """The exposition: OpenMetrics when the ``Accept`` header asks for it, text otherwise."""
    settings: Settings = current_app.extensions["settings"]
    if not _authorized(settings):
        return Response(
            "unauthorized\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"},
        )
    body, content_type = metrics.render(request.headers.get("Accept"))
    return Response(
        body, status=200, content_type=content_type, headers={"Cache-Control": "no-store"}
    )
