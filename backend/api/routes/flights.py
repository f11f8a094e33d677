"""/api/v1/flights: list (filters + keyset pagination), get, create, patch, delete."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Annotated, Any

import duckdb
import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from api import idempotency
from api.db.database import retry_on_conflict, run_query, transaction
from api.dependencies import Cursor, FlightIds, GroupWrites, get_database
from api.http_semantics import JsonBodyRoute
from api.idempotency import IdempotencyKeyHeader
from api.problems import FieldError, ValidationProblem
from api.schemas import (
    MAX_BIGINT,
    MAX_DELAY_MINUTES,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    AirportFilter,
    CarrierFilter,
    Flight,
    FlightCreate,
    FlightPage,
    FlightPatch,
    IsoDate,
)

# JsonBodyRoute: bodies must be JSON (415), decoded with bounded nesting (api/http_semantics.py).
router = APIRouter(prefix="/api/v1/flights", tags=["flights"], route_class=JsonBodyRoute)

INPUT_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
_SORT_KEY = ("year", "month", "day", "sched_dep_time", "id")
# A real cursor (five integers) is ~40-90 characters of urlsafe base64; longer is not ours.
MAX_CURSOR_CHARS = 128
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"


def encode_cursor(row: dict[str, Any]) -> str:
    """Opaque page cursor: urlsafe base64 (unpadded) of the row's sort key as a JSON list."""
    key = json.dumps([row[name] for name in _SORT_KEY], separators=(",", ":"))
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, int]:
    """The sort key inside a cursor; raises `ValidationProblem` (field "cursor") if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # orjson: nesting is bounded (the stdlib decoder raised RecursionError on a cursor of
        # nested lists, a 500); the length is bounded by MAX_CURSOR_CHARS too.
        key = orjson.loads(raw)
    except (binascii.Error, ValueError):
        key = None
    if (
        not isinstance(key, list)
        or len(key) != len(_SORT_KEY)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in key)
        # beyond BIGINT DuckDB cannot bind the value (it answered 500 before this check)
        or not all(-MAX_BIGINT <= v <= MAX_BIGINT for v in key)
    ):
        raise ValidationProblem([{"field": "cursor", "message": "malformed cursor"}])
    return dict(zip(_SORT_KEY, key, strict=True))


def check_flight(db: duckdb.DuckDBPyConnection, record: dict[str, Any]) -> None:
    """Rules over the whole (merged) record: required fields present, a real date, a known
    carrier (airlines table), an origin that flights leave from. Raises `ValidationProblem`
    listing every failure; returns None when the record is valid."""
    errors: list[FieldError] = [
        {"field": name, "message": f"{name} is required and must not be null"}
        for name in REQUIRED_FIELDS
        if record.get(name) is None
    ]
    year, month, day = record.get("year"), record.get("month"), record.get("day")
    if year is not None and month is not None and day is not None:
        try:
            dt.date(year, month, day)
        except ValueError:
            errors.append(
                {"field": "day", "message": f"{year:04d}-{month:02d}-{day:02d} is not a real date"}
            )
    carrier, origin = record.get("carrier"), record.get("origin")
    # One statement for both references (each statement costs ~0.25 ms of fixed overhead).
    known = run_query(db, "flight_references_exist", {"carrier": carrier, "origin": origin})
    carrier_known, origin_known = known.rows[0]
    if carrier is not None and not carrier_known:
        errors.append({"field": "carrier", "message": f"unknown carrier {carrier!r}"})
    if origin is not None and not origin_known:
        # The full list only for the message of this (rare) failure.
        origins = [row[0] for row in run_query(db, "flight_origins").rows]
        errors.append(
            {
                "field": "origin",
                "message": f"origin {origin!r} is not an airport flights leave from "
                f"({', '.join(origins)})",
            }
        )
    if errors:
        raise ValidationProblem(errors)


def _write_params(record: dict[str, Any], flight_id: int) -> dict[str, Any]:
    # hour and minute are derived from the scheduled departure (time_hour in SQL).
    params = {name: record.get(name) for name in INPUT_FIELDS}
    params["id"] = flight_id
    params["hour"], params["minute"] = divmod(record["sched_dep_time"], 100)
    return params


def _get_flight(db: duckdb.DuckDBPyConnection, flight_id: int) -> dict[str, Any]:
    if not 1 <= flight_id <= MAX_BIGINT:  # no such id can exist; DuckDB could not bind it
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flight {flight_id} not found")
    row = run_query(db, "flight_get", {"id": flight_id}).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flight {flight_id} not found")
    return row


@router.get("", response_model=FlightPage)
def list_flights(
    db: Cursor,
    origin: AirportFilter = None,
    dest: AirportFilter = None,
    carrier: CarrierFilter = None,
    date_from: IsoDate | None = None,
    date_to: IsoDate | None = None,
    min_dep_delay: Annotated[
        int | None, Query(ge=-MAX_DELAY_MINUTES, le=MAX_DELAY_MINUTES, description="minutes")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            description="next_cursor of the previous page (opaque)",
            max_length=MAX_CURSOR_CHARS,
            pattern=CURSOR_PATTERN,
        ),
    ] = None,
) -> dict[str, Any]:
    """Flights ordered by scheduled departure (year, month, day, sched_dep_time, id).

    Filters are optional and combine with AND; dates inclusive. Returns at most `limit`
    rows and `next_cursor` (null on the last page). 422 for a malformed cursor.
    """
    after = decode_cursor(cursor) if cursor else dict.fromkeys(_SORT_KEY)
    params = {
        "origin": origin,
        "dest": dest,
        "carrier": carrier,
        "date_from": date_from,
        "date_to": date_to,
        "min_dep_delay": min_dep_delay,
        "limit": limit + 1,  # one extra row tells whether another page exists
        **{f"after_{name}": value for name, value in after.items()},
    }
    rows = run_query(db, "flight_list", params).dicts()
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return {"items": rows[:limit], "next_cursor": next_cursor}


@router.get("/{flight_id}", response_model=Flight)
def get_flight(db: Cursor, flight_id: int) -> dict[str, Any]:
    """One flight by id; 404 when there is none."""
    return _get_flight(db, flight_id)


@router.post("", response_model=Flight, status_code=status.HTTP_201_CREATED)
def create_flight(
    request: Request,
    db: Cursor,
    ids: FlightIds,
    writes: GroupWrites,
    body: FlightCreate,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Create a flight with a new id; 201 with a Location header, 422 on bad input.

    Validation reads before the write, the id comes from the process's block (api/db/ids.py)
    and the answer is the row as the INSERT wrote it (RETURNING): the write is one statement
    that no concurrent create conflicts with, committed in a group (api/db/batch.py). With an
    `Idempotency-Key` a repeat gets the first answer again (api/idempotency.py).
    """
    with idempotency.claim(request, db, idempotency_key, body.model_dump()) as claim:
        if claim.replay is not None:
            return claim.replay
        record = body.model_dump()
        check_flight(db, record)
        flight_id = ids.next_id(db)
        location = f"{router.prefix}/{flight_id}"

        # Written and committed together with the creates of other requests queued meanwhile:
        # one statement, one WAL sync for all of them (api/db/batch.py); returns once
        # committed, with the idempotency key (if any) in the same transaction.
        row = writes.execute(
            get_database(request),
            _write_params(record, flight_id),
            record=(lambda row: claim.record(201, row, location)) if claim.key else None,
        )
    response.headers["Location"] = location
    return row


@router.patch("/{flight_id}", response_model=Flight)
def patch_flight(
    request: Request,
    db: Cursor,
    flight_id: int,
    body: FlightPatch,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Apply the fields sent to a stored flight; the merged record must be valid.

    404 for an unknown id, 422 if the merged record breaks a rule (nothing is written). The
    answer is the row as this request's own transaction wrote it (UPDATE ... RETURNING), never
    a later re-read that could show another writer's values. With an `Idempotency-Key` the
    key and this answer are stored in the same transaction; a repeat gets it again.
    """
    changes = body.model_dump(include=body.model_fields_set)
    with idempotency.claim(request, db, idempotency_key, changes) as claim:
        if claim.replay is not None:
            return claim.replay
        return _patch(db, flight_id, changes, claim)


def _patch(
    db: duckdb.DuckDBPyConnection,
    flight_id: int,
    changes: dict[str, Any],
    claim: idempotency.Claim,
) -> dict[str, Any]:

    def update() -> dict[str, Any]:
        # Read, check and write in one transaction: a concurrent change makes it conflict
        # (and retry) instead of being silently overwritten.
        with transaction(db):
            stored = _get_flight(db, flight_id)
            record = {name: stored[name] for name in INPUT_FIELDS} | changes
            check_flight(db, record)
            row = run_query(db, "flight_update", _write_params(record, flight_id)).first()
            if row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"flight {flight_id} not found")
            if claim.key:
                idempotency.store(db, [claim.record(200, row)])
        return row

    return retry_on_conflict(update)


@router.delete("/{flight_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_flight(db: Cursor, flight_id: int) -> Response:
    """Delete a flight; 204, or 404 when there is none."""

    if not 1 <= flight_id <= MAX_BIGINT:  # see _get_flight
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flight {flight_id} not found")

    def delete() -> bool:
        with transaction(db):
            return bool(run_query(db, "flight_delete", {"id": flight_id}).rows)

    if not retry_on_conflict(delete):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flight {flight_id} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
