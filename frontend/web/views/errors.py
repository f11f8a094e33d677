"""Error pages. Users never see a stack trace: backend outages become a 503 page with
``Retry-After``, backend 404s a 404 page, anything unexpected a plain 500 page."""

from __future__ import annotations

import structlog
from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from web.backend_client import BackendError, BackendNotFound, BackendUnavailable
from web.deployment import refused_for_plain_http

RETRY_AFTER_SECONDS = 10


def _page(
    status: int, title: str, message: str, headers: dict[str, str] | None = None
) -> ResponseReturnValue:
    html = render_template("error.html", status=status, title=title, message=message)
    return html, status, headers or {}


log = structlog.get_logger(__name__)


def _request_fields() -> dict[str, str]:
    """The request's method and path as log fields (semconv names)."""
    return {"http.request.method": request.method, "url.path": request.path}


def register(app: Flask) -> None:
    """Install the error handlers on ``app``."""

    @app.errorhandler(BackendUnavailable)
    def backend_unavailable(exc: BackendUnavailable) -> ResponseReturnValue:
        log.warning("backend.unavailable", **_request_fields(), error=str(exc))
        return _page(
            503,
            "Temporarily unavailable",
            "The flight data service is not answering right now. "
            "Please try again in a few seconds.",
            {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
        )

    @app.errorhandler(BackendNotFound)
    def backend_not_found(exc: BackendNotFound) -> ResponseReturnValue:
        return _page(404, "Not found", "There is no such flight. It may have been deleted.")

    @app.errorhandler(BackendError)
    def backend_error(exc: BackendError) -> ResponseReturnValue:
        log.error("backend.error", **_request_fields(), error=str(exc))
        return _page(
            502, "Something went wrong", "The flight data service could not handle this request."
        )

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> ResponseReturnValue:
        # Flight forms show themselves again instead (web/views/flights.py); this page is
        # for any other POST without a valid token.
        plain_http = refused_for_plain_http()
        if plain_http:
            return _page(400, "Forms need HTTPS", plain_http)
        return _page(
            400,
            "Form expired",
            "This form was missing its security token or it expired. "
            "Go back, reload the page and submit again.",
        )

    @app.errorhandler(404)
    def not_found(exc: HTTPException) -> ResponseReturnValue:
        return _page(404, "Page not found", "There is no page at this address.")

    @app.errorhandler(InternalServerError)
    def internal_error(exc: InternalServerError) -> ResponseReturnValue:
        # Not logged here: Flask's handle_exception has already logged it, once, with the
        # stack and inside the request's span (trace ids). A second line was a duplicate.
        return _page(500, "Something went wrong", "An unexpected error occurred on our side.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        # Keep protocol headers such as Allow (405) from the original exception.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return _page(exc.code or 500, exc.name, exc.description or "", headers)
