"""RFC 9457 problem details (`application/problem+json`) for every error the API returns.

Every body has `type`, `title`, `status`, `detail` and `instance` (the request path); a 422
adds `errors: [{"field", "message"}]` (docs/api.md). 500s never carry a stack trace, and an
unhandled error is logged exactly once (`_unhandled`, with the trace ids): uvicorn's own
"Exception in ASGI application" line for the same exception is dropped
(`api.observability.logging`). Messages quote at most a short, truncated part of a bad input.
"""

from __future__ import annotations

import contextlib
from http import HTTPStatus
from typing import Any, TypedDict

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.db.database import DatabaseNotReadyError, StorageWriteError, WriteConflictError
from api.faults import InjectedFaultError
from api.http_semantics import allowed_methods
from api.idempotency import IdempotencyProblem
from api.observability.requests import REQUEST_ID_HEADER, request_id_of, server_span_of
from api.observability.servers import LOGGED_MARK

logger = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

# RFC 9110 renamed these; Python 3.11's HTTPStatus still has the old phrases.
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}
# A field name in an error (e.g. an unknown body key) is quoted at most this long.
MAX_FIELD_NAME_CHARS = 64


class FieldError(TypedDict):
    """One failed field: the request field name and a message for humans."""

    field: str
    message: str


class ValidationProblem(Exception):
    """Input that failed a check beyond the schema (e.g. unknown carrier). Maps to 422."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response with `status` (int) and human-readable `detail`."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status) or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def validation_response(request: Request, errors: list[FieldError]) -> JSONResponse:
    """The 422 problem for a list of field errors."""
    n = len(errors)
    detail = f"{n} field{'s' if n != 1 else ''} failed validation"
    return problem_response(request, 422, detail, errors=errors)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    # The last string in loc is the body field or query parameter ("body" for a broken body).
    names = [part for part in loc if isinstance(part, str)]
    name = names[-1] if names else "body"
    # An unknown key of the body is the client's text: quote only its start.
    return name if len(name) <= MAX_FIELD_NAME_CHARS else name[:MAX_FIELD_NAME_CHARS] + "…"


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    # AfterValidator messages come back as "Value error, <our message>".
    return message.removeprefix("Value error, ")


def field_errors(errors: Any) -> list[FieldError]:
    """pydantic's (or FastAPI's) error list as our `[{field, message}]`."""
    return [{"field": _field_name(err.get("loc", ())), "message": _message(err)} for err in errors]


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # registered for this type only
        raise TypeError(exc)
    headers = dict(exc.headers) if exc.headers else None
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    elif exc.status_code == 405:
        if detail == "Method Not Allowed":
            detail = f"method {request.method} is not allowed on {request.url.path}"
        # Every method of the path, not just those of the first route that matched it.
        allow = ", ".join(allowed_methods(request.app, request.scope))
        headers = {**(headers or {}), "Allow": allow}
    return problem_response(request, exc.status_code, detail, headers=headers)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for this type only
        raise TypeError(exc)
    return validation_response(request, field_errors(exc.errors()))


async def _validation_problem(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ValidationProblem):  # registered for this type only
        raise TypeError(exc)
    return validation_response(request, exc.errors)


def _request_fields(request: Request) -> dict[str, str]:
    """The request's method and path as log fields (semconv names)."""
    return {"http.request.method": request.method, "url.path": request.url.path}


async def _write_conflict(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("http.write_conflict", **_request_fields(request), error=str(exc))
    return problem_response(request, 409, "the record was changed concurrently; retry the request")


async def _idempotency_problem(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, IdempotencyProblem):  # registered for this type only
        raise TypeError(exc)
    return problem_response(request, exc.status, exc.detail)


async def _not_ready(request: Request, exc: Exception) -> JSONResponse:
    # Connection: close: during a rolling deploy two backends share one name (round-robin per
    # connection); a client's retry on a new connection may reach the one that is ready,
    # while on this kept-alive one it would reach this waiting one again.
    return problem_response(
        request,
        503,
        "the database is not ready",
        headers={"Retry-After": "5", "Connection": "close"},
    )


async def _storage_write_failed(request: Request, exc: Exception) -> JSONResponse:
    # Logged where it happened (api/db/database.py) and reported by /readyz ("writes").
    return problem_response(
        request,
        503,
        "the database cannot store changes right now (its storage is full or failing); "
        "nothing was written",
        headers={"Retry-After": "30"},
    )


async def _injected_fault(request: Request, exc: Exception) -> JSONResponse:
    # A drill's failure, asked for in FAULT_INJECTION: a warning, not a stack trace.
    logger.warning("fault.injected", **_request_fields(request), error=str(exc))
    return problem_response(request, 500, "injected fault (FAULT_INJECTION)")


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # Logged with its traceback, with the trace ids of the server span (the request
    # middleware recorded the exception on it and ended it); the client gets no internals.
    # Starlette re-raises it afterwards and uvicorn would log it a second time.
    span = server_span_of(request.scope)
    with trace.use_span(span, record_exception=False, set_status_on_exception=False):
        logger.error("http.unhandled_error", **_request_fields(request), exc_info=exc)
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, LOGGED_MARK, True)
    # This handler runs outside the request middleware (Starlette's ServerErrorMiddleware),
    # so it sets the request id header itself.
    request_id = request_id_of(request.scope)
    headers = {REQUEST_ID_HEADER: request_id} if request_id else None
    return problem_response(request, 500, "internal server error", headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(ValidationProblem, _validation_problem)
    app.add_exception_handler(WriteConflictError, _write_conflict)
    app.add_exception_handler(DatabaseNotReadyError, _not_ready)
    app.add_exception_handler(IdempotencyProblem, _idempotency_problem)
    app.add_exception_handler(StorageWriteError, _storage_write_failed)
    app.add_exception_handler(InjectedFaultError, _injected_fault)
    app.add_exception_handler(Exception, _unhandled)
