"""Fault injection for drills and tests (`FAULT_INJECTION`): off by default, refused in
production.

An operator (or a test) lists faults as JSON in the environment, for example::

    FAULT_INJECTION='[{"route": "GET /api/v1/flights/{flight_id}", "slowdown": 3},
                      {"query": "stats_daily", "delay_ms": 250},
                      {"route": "GET /api/v1/airlines", "error_rate": 0.2}]'

Each fault targets exactly one thing:

- `route`: `"METHOD /route/template"` as in the `http.route` of the access line and metrics
  (e.g. `GET /api/v1/flights/{flight_id}`). Applied by `FaultInjectionMiddleware` around the
  whole request, so the server span, the access line and `http_server_request_duration_seconds`
  all show it, exactly as a slow or failing handler would.
- `query`: a named DuckDB query (`api/db/queries.py`, e.g. `flight_list`). Applied inside
  `run_query`, so the query's span and `duckdb_query_duration_seconds` show it, and the thread
  that runs the query is held for the delay, exactly as a slow query would hold it.

and has any of:

- `delay_ms` (0..60000): milliseconds added to every matching request or query;
- `slowdown` (1..100): the request or query takes this many times as long as it really did
  (the extra time is waited after the real work);
- `error_rate` (0..1): this share of matching requests answers 500 problem+json (routes), or
  of matching queries raises `InjectedFaultError` (queries: the route answers 500 as for any
  DuckDB failure).

Invalid JSON or fields make start-up fail with a message naming `FAULT_INJECTION`; with
`APP_ENV=production` any fault is refused (api/settings.py).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.observability.requests import route_template

T = TypeVar("T")


class InjectedFaultError(RuntimeError):
    """Raised by a `query` fault's `error_rate`; the API answers 500 (a drill's failure)."""


class Fault(BaseModel):
    """One entry of `FAULT_INJECTION` (see the module doc). Exactly one of route/query."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: str | None = Field(default=None, pattern=r"^[A-Z]+ /\S*$", max_length=200)
    query: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$", max_length=100)
    delay_ms: float = Field(default=0.0, ge=0, le=60_000)
    slowdown: float = Field(default=1.0, ge=1, le=100)
    error_rate: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _one_target_and_an_effect(self) -> Self:
        if (self.route is None) == (self.query is None):
            raise ValueError("each fault names exactly one of 'route' or 'query'")
        if self.delay_ms == 0 and self.slowdown == 1 and self.error_rate == 0:
            raise ValueError("a fault needs delay_ms, slowdown or error_rate")
        return self

    def fails(self) -> bool:
        """Draw whether this occurrence fails (probability `error_rate`)."""
        return self.error_rate > 0 and random.random() < self.error_rate  # nosec B311 - not security

    def extra_seconds(self, elapsed: float) -> float:
        """Seconds to wait after real work that took `elapsed` seconds."""
        return self.delay_ms / 1000 + (self.slowdown - 1) * elapsed


# The process's faults, set by the app factory from the settings (empty: no cost at all).
_query_faults: dict[str, Fault] = {}


def configure(faults: Sequence[Fault]) -> None:
    """Install the query faults of this process (route faults live in the middleware)."""
    _query_faults.clear()
    _query_faults.update({f.query: f for f in faults if f.query is not None})


def run_with_query_fault(name: str, execute: Callable[[], T]) -> T:
    """`execute()` with the fault configured for named query `name`, if any, applied.

    Blocking on purpose: a slow query holds its thread. Raises `InjectedFaultError` when the
    fault's error draw fails (before running the query, so nothing is written).
    """
    fault = _query_faults.get(name)
    if fault is None:
        return execute()
    if fault.fails():
        raise InjectedFaultError(f"injected fault on query {name} (FAULT_INJECTION)")
    started = time.perf_counter()
    result = execute()
    time.sleep(fault.extra_seconds(time.perf_counter() - started))
    return result


class FaultInjectionMiddleware:
    """Pure ASGI middleware applying the `route` faults (see the module doc).

    A failing draw answers 500 `application/problem+json` without calling the route (nothing
    is written); a delay or slowdown holds the response start until the extra time passed, so
    the client, the access line and the server span all see the slower answer.
    """

    def __init__(self, app: ASGIApp, faults: Sequence[Fault]) -> None:
        self.app = app
        self.faults = {f.route: f for f in faults if f.route is not None}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.faults:
            await self.app(scope, receive, send)
            return
        fault = self.faults.get(f"{scope.get('method', '')} {route_template(scope)}")
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.fails():
            await _send_injected_error(scope, send)
            return
        started = time.perf_counter()

        async def delayed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(fault.extra_seconds(time.perf_counter() - started))
            await send(message)

        await self.app(scope, receive, delayed_send)


async def _send_injected_error(scope: Scope, send: Send) -> None:
    # Built by hand: this middleware sits outside the exception handlers (api/problems.py).
    import orjson

    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "injected fault (FAULT_INJECTION)",
            "instance": scope.get("path", ""),
        }
    )
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
