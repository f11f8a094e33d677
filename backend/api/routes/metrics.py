"""GET /metrics: Prometheus exposition (docs/observability.md, "Metrics").

OpenMetrics when the scraper's Accept header asks for it (exemplars exist only there), the
classic text format otherwise. With `METRICS_TOKEN` set the request needs
`Authorization: Bearer <token>`; anything else gets a 401 problem+json with
`WWW-Authenticate: Bearer`. Kept out of the OpenAPI schema and out of traces.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response

from api.observability import metrics
from api.problems import problem_response

router = APIRouter()


def _authorized(request: Request) -> bool:
    token = request.app.state.settings.metrics_token
    if token is None:
        return True
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    # compare_digest: the comparison time does not reveal how much of the token matched.
    return scheme.lower() == "bearer" and secrets.compare_digest(
        credentials.strip().encode(), token.get_secret_value().encode()
    )


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    """The process's metrics; 401 without the right bearer token when one is configured."""
    if not _authorized(request):
        return problem_response(
            request,
            401,
            "a valid bearer token is required (METRICS_TOKEN)",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body, content_type = metrics.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
