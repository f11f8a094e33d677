"""The API key every `/api/v1` request must carry (`BACKEND_API_KEY`, docs/api.md).

The backend's port can be reached by mistake (Coolify gives every new resource a public
domain), so it refuses strangers itself: `ApiKeyMiddleware` answers any request under
`/api/v1` (known path or not, any method) without `Authorization: Bearer <key>` with a 401
problem+json and `WWW-Authenticate: Bearer` (RFC 6750), before routing. The probes
(`/livez`, `/readyz`, `/health`) stay open; `/metrics` has its own token (METRICS_TOKEN).

Several keys may be accepted at once (`BACKEND_API_KEY=new,old`) so a key can be rotated
without downtime (README, "Rotating BACKEND_API_KEY"). Keys are compared in constant time,
all of them on every request, so the timing tells nothing about a key or which one matched.

`bearer_scheme` only documents the scheme in the OpenAPI schema (Swagger UI's "Authorize");
it never rejects anything itself: the middleware has already done that.
"""

from __future__ import annotations

import secrets

from fastapi.security import HTTPBearer
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem_response

API_PREFIX = "/api/v1"

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BackendApiKey",
    description="`Authorization: Bearer <BACKEND_API_KEY>` (the key shared with the frontend)",
)


def key_is_valid(authorization: str, keys: tuple[bytes, ...]) -> bool:
    """True when the `Authorization` header value is `Bearer <one of keys>`."""
    scheme, _, credentials = authorization.partition(" ")
    presented = credentials.strip().encode("latin-1", "replace")
    # Every key is compared (no short circuit): the time does not depend on which one matched.
    matches = [secrets.compare_digest(presented, key) for key in keys]
    return scheme.lower() == "bearer" and any(matches)


def _authorization(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return ""


class ApiKeyMiddleware:
    """Pure ASGI middleware: 401 for every `/api/v1` request without a valid key.

    With no keys (`API_AUTH_DISABLED=true`, development only) it lets everything through.
    """

    def __init__(self, app: ASGIApp, keys: tuple[bytes, ...]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys:
            path = scope.get("path", "")
            if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
                authorization = _authorization(scope)
                if not key_is_valid(authorization, self.keys):
                    challenge = 'Bearer realm="api"'
                    if authorization:  # RFC 6750 3.1: a key was sent but is not valid
                        challenge += ', error="invalid_token"'
                    response = problem_response(
                        Request(scope),
                        401,
                        "a valid API key is required: Authorization: Bearer <BACKEND_API_KEY>",
                        headers={"WWW-Authenticate": challenge},
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
