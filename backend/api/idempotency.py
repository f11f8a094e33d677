"""`Idempotency-Key` on writes: a retried POST or PATCH is applied once and answered the same.

Follows the IETF httpapi draft "The Idempotency-Key HTTP Header Field"
(draft-ietf-httpapi-idempotency-key-header): the client (the frontend, one key per submitted
form) sends `Idempotency-Key: "<key>"` (a Structured Field string; a bare token is accepted
too) with `POST /api/v1/flights` or `PATCH /api/v1/flights/{id}`.

- First request with a key: the write is applied and its answer (status, JSON body, Location)
  is stored under the key in the SAME transaction as the write (`idempotency_keys`,
  migration 0004), so either both are committed or neither is.
- Repeat with the same key and the same request (method, path, canonical JSON body): the
  stored answer again, nothing is written.
- Same key, different request: 422 (draft section 2.7, "key reused with a different payload").
- The same key while its first request is still being handled: 409 (draft section 2.7).
- A malformed key: 400. Without the header a write works as before (no idempotency).

Keys expire after `KEY_TTL_SECONDS` (24 h, the draft's example): an expired key is treated
as new, and start-up removes expired rows. "In flight" is tracked in this process only, which
is enough: exactly one process may have the database file open (DuckDB's lock).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import duckdb
import orjson
from fastapi import Header, Request
from fastapi.responses import JSONResponse

from api.db.database import run_query

HEADER = "Idempotency-Key"
KEY_TTL_SECONDS = 24 * 3600.0
MAX_KEY_CHARS = 128
# An sf-string of token-like characters (a UUID fits), or the same characters bare.
_KEY_CHARS = rf"[A-Za-z0-9._:~+/=-]{{1,{MAX_KEY_CHARS}}}"
KEY_PATTERN = rf'^("{_KEY_CHARS}"|{_KEY_CHARS})$'
_KEY = re.compile(KEY_PATTERN)

# The parameter as routes declare it. Its syntax is checked here (400, as the draft says),
# not by FastAPI (which would answer 422); api/openapi.py documents the pattern.
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description="makes a retried write safe: the same key and body are applied once "
        "and answered with the stored response (api/idempotency.py)",
    ),
]


class IdempotencyProblem(Exception):
    """A request whose key cannot be honoured: `status` 400, 409 or 422, `detail` for humans."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_key(raw: str) -> str:
    """The key inside an `Idempotency-Key` value; raises IdempotencyProblem(400) if malformed."""
    if not _KEY.match(raw):
        raise IdempotencyProblem(
            400,
            f"malformed {HEADER}: send a quoted string of 1 to {MAX_KEY_CHARS} letters, "
            'digits or ._:~+/=- (e.g. a UUID: "8e03978e-40d5-43e8-bc93-6894a57f9324")',
        )
    return raw.strip('"')


def fingerprint(method: str, path: str, body: Mapping[str, Any]) -> str:
    """sha256 hex of the method, the path and the body as canonical JSON (sorted keys)."""
    canonical = orjson.dumps(
        {"method": method, "path": path, "body": body}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(canonical).hexdigest()


class InFlight:
    """The keys whose first request this process is handling now (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: set[str] = set()

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold `key` for the block; raises IdempotencyProblem(409) if it is held already."""
        with self._lock:
            if key in self._keys:
                raise IdempotencyProblem(
                    409, f"a request with this {HEADER} is still being processed; retry later"
                )
            self._keys.add(key)
        try:
            yield
        finally:
            with self._lock:
                self._keys.discard(key)


@dataclass
class Claim:
    """What a write does with its key: `replay` (answer it, write nothing) or `key` (write,
    and store `record(...)` in the same transaction). Both None: no key was sent."""

    key: str | None = None
    fingerprint: str = ""
    replay: JSONResponse | None = None

    def record(
        self, status_code: int, body: Mapping[str, Any], location: str | None = None
    ) -> dict[str, Any]:
        """The `idempotency_keys` row of this answer (the parameters of one row)."""
        return {
            "key": self.key,
            "fingerprint": self.fingerprint,
            "status_code": status_code,
            "body": orjson.dumps(dict(body)).decode(),
            "location": location,
            "created_at": time.time(),
        }


def store(db: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Insert `Claim.record` rows (inside the caller's transaction)."""
    if rows:
        run_query(
            db, "idempotency_insert_batch", {name: [r[name] for r in rows] for name in rows[0]}
        )


def purge_expired(db: duckdb.DuckDBPyConnection, now: float | None = None) -> None:
    """Delete keys older than KEY_TTL_SECONDS (start-up)."""
    run_query(db, "idempotency_purge", {"before": (now or time.time()) - KEY_TTL_SECONDS})


@contextmanager
def claim(
    request: Request,
    db: duckdb.DuckDBPyConnection,
    raw_key: str | None,
    body: Mapping[str, Any],
) -> Iterator[Claim]:
    """Decide what a write with `raw_key` does (see the module doc); the key is held (409 for
    a concurrent repeat) until the block ends. Raises IdempotencyProblem (400, 409, 422)."""
    if raw_key is None:
        yield Claim()
        return
    key = parse_key(raw_key)
    digest = fingerprint(request.method, request.url.path, body)
    in_flight: InFlight = request.app.state.idempotency_in_flight
    with in_flight.hold(key):
        stored = run_query(db, "idempotency_get", {"key": key}).first()
        if stored is not None and stored["created_at"] < time.time() - KEY_TTL_SECONDS:
            run_query(db, "idempotency_delete", {"key": key})
            stored = None
        if stored is None:
            yield Claim(key=key, fingerprint=digest)
            return
        if stored["fingerprint"] != digest:
            raise IdempotencyProblem(
                422,
                f"this {HEADER} was already used for a different request (method, path or "
                "body); use a new key for a new request",
            )
        headers = {"Location": stored["location"]} if stored["location"] else None
        yield Claim(
            replay=JSONResponse(
                orjson.loads(stored["body"]), status_code=stored["status_code"], headers=headers
            )
        )
