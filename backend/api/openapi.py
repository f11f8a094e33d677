"""The OpenAPI document: every status code, media type and field rule the API really has.

FastAPI documents the success responses and its default 422 (as `application/json`, with its
own `HTTPValidationError` shape). This backend answers every error with RFC 9457 problem
details (`api/problems.py`), so `openapi_schema(app)` completes FastAPI's document:

- every error response is `application/problem+json` with the `Problem` schema;
- each operation declares the error statuses it can answer (`_errors_of`): 401 (no key) and
  500 everywhere under `/api/v1`, 503 (database not ready), 422 where it takes parameters or a
  body, 404 for a flight id, 409 for writes (conflict after retries), 400/413/415 for bodies;
- the probes declare their 503 (plain JSON, what probes read: `HealthStatus`);
- `POST /api/v1/flights` declares its `Location` header and links to the operations on the
  new flight (`get_flight`, `patch_flight`, `delete_flight`), which stateful tests follow.

Field rules (patterns, lengths, ranges, clock times) come from the pydantic models and the
query parameters themselves (`api/schemas.py`). Called once; FastAPI caches the result.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from api.auth import API_PREFIX
from api.idempotency import HEADER, KEY_PATTERN, MAX_KEY_CHARS
from api.problems import PROBLEM_JSON
from api.schemas import FlightCreate, FlightPatch


class FieldProblem(BaseModel):
    """One failed field of a 422: the request field name (body field or query parameter)."""

    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error of the API."""

    type: str = Field(description='always "about:blank": the status says what happened')
    title: str = Field(description="the status phrase, e.g. Unprocessable Content")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong, for humans")
    instance: str = Field(description="the request path")
    errors: list[FieldProblem] | None = Field(
        default=None, description="422 only: every field that failed validation"
    )


class HealthStatus(BaseModel):
    """A probe's answer: `status` and one entry per check (`"ok"` or the reason)."""

    status: str = Field(description='"ok", "fail" or, on /health only, "starting"')
    checks: dict[str, str] | None = None


# A query parameter sent empty (`?origin=`) means "not set" on every endpoint.
EMPTY_VALUE = {"type": "string", "maxLength": 0, "description": "empty: not set"}

_DESCRIPTIONS = {
    "400": "the body could not be read, or the Idempotency-Key is malformed",
    "401": "no valid API key (Authorization: Bearer <BACKEND_API_KEY>)",
    "404": "no such flight",
    "409": "the record was changed concurrently, or a request with the same Idempotency-Key "
    "is still being processed; retry",
    "413": "the body is larger than the limit (64 KiB)",
    "415": "the body is not JSON",
    "422": "a parameter or field failed validation (see errors), or the Idempotency-Key was "
    "used for a different request",
    "500": "internal error (never a stack trace)",
    "503": "the database is not ready (Retry-After)",
}


def _errors_of(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["500"]
    if path.startswith(API_PREFIX):
        statuses += ["401", "503"]
        if operation.get("parameters") or "requestBody" in operation:
            statuses.append("422")
        if "{flight_id}" in path:
            statuses.append("404")
        if method in ("post", "patch", "delete"):
            statuses.append("409")
        if "requestBody" in operation:
            statuses += ["400", "413", "415"]
    return sorted(statuses)


def _problem(status: str) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document for `app`, completed as the module doc says (cached on `app`)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (FieldProblem, Problem, HealthStatus, FlightCreate, FlightPatch):
        definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(definition.pop("$defs", {}))
        components[model.__name__] = definition
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)

    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter["name"] == HEADER:
                    # Checked by api/idempotency.py (400, as the draft says), not by FastAPI.
                    parameter["schema"] = {
                        "type": "string",
                        "pattern": KEY_PATTERN,
                        "maxLength": MAX_KEY_CHARS + 2,
                    }
                if parameter.get("in") == "query":
                    # docs/api.md: an empty value counts as not set (DropEmptyQueryParams).
                    parameter["schema"] = {"anyOf": [parameter["schema"], EMPTY_VALUE]}
            responses = operation.setdefault("responses", {})
            for status in list(responses):
                if status.startswith(("4", "5")):
                    del responses[status]  # FastAPI's 422 (application/json) is not ours
            for status in _errors_of(path, method, operation):
                responses[status] = _problem(status)
            if not path.startswith(API_PREFIX) and path in ("/readyz", "/health"):
                ref = {"$ref": "#/components/schemas/HealthStatus"}
                for status in ("200", "503"):
                    responses[status] = {
                        "description": "ready" if status == "200" else "not ready",
                        "content": {"application/json": {"schema": ref}},
                    }
    # The write routes validate their bodies themselves (every field error in one 422,
    # api/routes/flights.py `validated_body`); their bodies are these models.
    for path, method, model in (
        (f"{API_PREFIX}/flights", "post", FlightCreate),
        (f"{API_PREFIX}/flights/{{flight_id}}", "patch", FlightPatch),
    ):
        body = schema["paths"][path][method]["requestBody"]
        body["content"]["application/json"]["schema"] = {
            "$ref": f"#/components/schemas/{model.__name__}"
        }
    created = schema["paths"][f"{API_PREFIX}/flights"]["post"]["responses"]["201"]
    created["headers"] = {
        "Location": {"description": "path of the new flight", "schema": {"type": "string"}}
    }
    created["links"] = {
        name: {"operationId": operation, "parameters": {"flight_id": "$response.body#/id"}}
        for name, operation in (
            ("GetFlight", "get_flight"),
            ("PatchFlight", "patch_flight"),
            ("DeleteFlight", "delete_flight"),
        )
    }
    app.openapi_schema = schema
    return schema
