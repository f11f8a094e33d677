"""HTTP semantics FastAPI leaves to the application (RFC 9110), and bounded JSON bodies.

- `HeadAsGet`: `HEAD` is answered on every `GET` route (RFC 9110 9.3.2: the GET's status and
  headers, no body). FastAPI routes accept exactly the methods they declare, so without this
  every probe and API route answered `HEAD` with 405. Done once here rather than by declaring
  HEAD on every route, which would also double every operation in the OpenAPI document.
- `allowed_methods`: the `Allow` header of a 405 lists the methods of EVERY route on that path
  (Starlette's router stops at the first route whose path matches, so `/api/v1/flights/1`
  said `Allow: GET` although PATCH and DELETE exist there).
- `JsonBodyRoute`: the route class of routers that take a JSON body. A body that is not
  declared as JSON (`application/json` or `+json`) gets 415 instead of FastAPI's 422, and the
  body is decoded by orjson, whose nesting limit (1,024 levels) raises an ordinary JSON error
  (422) where the stdlib decoder recursed into a `RecursionError`.
- `BodySizeLimit`: a request body beyond `MAX_BODY_BYTES` is answered 413 problem+json, by
  `Content-Length` before anything is read, or while a chunked body streams in. FastAPI's own
  `max_body_size` is not used: Starlette's limiter behind it replaces whatever the app
  answers with a plain-text 413 whenever `Content-Length` is too large
  (starlette/middleware/body_limit.py, `send_with_limit`), so the answer was not a problem.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from email.message import Message as EmailMessage
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Request bodies: a flight is ~400 bytes; 64 KiB leaves room and bounds the work per request.
MAX_BODY_BYTES = 64 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_MEDIA_TYPE = "application/json"


class BodyTooLarge(HTTPException):
    """413: the request body is larger than `MAX_BODY_BYTES`."""

    def __init__(self) -> None:
        super().__init__(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")


class BodySizeLimit:
    """Pure ASGI middleware: 413 for bodies beyond `max_bytes` (see the module doc).

    A declared `Content-Length` that is too large is refused before the route runs; a body
    without one is counted as it arrives and the read that crosses the limit raises
    `BodyTooLarge` (an HTTPException, so the problem handler answers)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
                break
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge()
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        from api.problems import problem_response

        error = BodyTooLarge()
        response = problem_response(Request(scope), 413, str(error.detail))
        await response(scope, receive, send)


class HeadAsGet:
    """Pure ASGI middleware: route `HEAD` like `GET` and drop the response body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods the routes of the request's path accept, sorted, HEAD wherever GET (see
    `HeadAsGet`). Routes are matched like the router does (included routers too)."""
    methods: set[str] = set()
    for context in iter_route_contexts(app.router.routes):
        match, _ = context.matches(scope)
        if match != Match.NONE and context.methods:
            methods |= context.methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def is_json_media_type(content_type: str | None) -> bool:
    """True for `application/json` and `application/<anything>+json` (parameters ignored)."""
    if not content_type:
        return False
    message = EmailMessage()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class BoundedJsonRequest(Request):
    """A request whose `json()` is decoded by orjson (bounded nesting, no recursion in Python).

    orjson's `JSONDecodeError` subclasses the stdlib's, so FastAPI answers 422 `json_invalid`.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class JsonBodyRoute(APIRoute):
    """An APIRoute whose POST/PUT/PATCH bodies must be JSON (415 otherwise), decoded by orjson.

    FastAPI's documented way to customise the request (a custom APIRoute class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded_json_handler(request: Request) -> Response:
            request = BoundedJsonRequest(request.scope, request.receive)
            if request.method in BODY_METHODS:
                content_type = request.headers.get("content-type")
                # An empty body without a type is left to FastAPI ("field required", 422).
                if not is_json_media_type(content_type) and (content_type or await request.body()):
                    # RFC 5789 2.2 (Accept-Patch) and its POST counterpart name what is accepted.
                    accept = "Accept-Patch" if request.method == "PATCH" else "Accept-Post"
                    raise HTTPException(
                        415,
                        f"the body must be JSON (Content-Type: {JSON_MEDIA_TYPE})",
                        headers={accept: JSON_MEDIA_TYPE},
                    )
            return await handler(request)

        return bounded_json_handler
