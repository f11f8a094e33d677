"""/api/v1/flights: list (filters + keyset pagination), get, create, patch, delete."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Annotated, Any, Literal, TypeVar

import duckdb
import orjson
from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, status
from pydantic import ValidationError

from api import idempotency
from api.db.database import retry_on_conflict, run_query, transaction
from api.db.queries import FLIGHT_SORT_TAIL, FLIGHT_SORTS, NULLS_LAST, flight_list_name
from api.dependencies import Cursor, DataYears, FlightIds, GroupWrites, Results, get_database
from api.http_semantics import JsonBodyRoute
from api.idempotency import IdempotencyKeyHeader
from api.problems import FieldError, ValidationProblem, field_errors
from api.schemas import (
    MAX_BIGINT,
    MAX_DELAY_MINUTES,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    AirportFilter,
    CarrierFilter,
    Flight,
    FlightCreate,
    FlightDetail,
    FlightPage,
    FlightPatch,
    IsoDate,
    YearRange,
)

# JsonBodyRoute: bodies must be JSON (415), decoded with bounded nesting (api/http_semantics.py).
router = APIRouter(prefix="/api/v1/flights", tags=["flights"], route_class=JsonBodyRoute)

INPUT_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
# A real cursor (sort, order, direction and up to six key values) is ~50-110 characters of
# urlsafe base64; longer is not ours.
MAX_CURSOR_CHARS = 160
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
# Longest text sort value (a carrier, origin or destination code).
MAX_CURSOR_TEXT = 10
SortName = Literal[
    "date", "carrier", "flight", "origin", "dest", "dep_delay", "arr_delay", "air_time",
    "distance",
]  # fmt: skip
SortOrder = Literal["asc", "desc"]
# A cursor points to the page after ("next") or before ("prev") the row of its key.
Direction = Literal["next", "prev"]
# The sorts whose leading key value is text (a code); the others' are integers.
_TEXT_SORTS = frozenset({"carrier", "origin", "dest"})


def _key_names(sort: str) -> tuple[str, ...]:
    return (("value",) if FLIGHT_SORTS[sort] else ()) + FLIGHT_SORT_TAIL


def _nulls(order: str) -> int:
    """The stand-in of a NULL sort value that puts it last in `order` (the SQL's
    coalesce($nulls), api/db/queries.py)."""
    return NULLS_LAST if order == "asc" else -NULLS_LAST


def _sort_value(row: dict[str, Any], sort: str, order: str) -> Any:
    value = row[sort]
    return _nulls(order) if value is None else value


def encode_cursor(row: dict[str, Any], sort: str, order: str, direction: Direction) -> str:
    """Opaque page cursor: urlsafe base64 (unpadded) of the JSON list [sort, order,
    direction, *key], the key being the row's sort value (unless sorted by date) then its
    (year, month, day, sched_dep_time, id)."""
    lead = [_sort_value(row, sort, order)] if FLIGHT_SORTS[sort] else []
    key = [sort, order, direction, *lead, *(row[name] for name in FLIGHT_SORT_TAIL)]
    text = json.dumps(key, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _key_value_ok(value: object) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_CURSOR_TEXT
    # beyond BIGINT DuckDB cannot bind the value (it answered 500 before this check)
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and -MAX_BIGINT <= value <= MAX_BIGINT
    )


def decode_cursor(cursor: str, sort: str, order: str) -> tuple[Direction, dict[str, Any]]:
    """The direction and sort key inside a cursor made for this `sort` and `order`.

    Raises `ValidationProblem` (field "cursor") if it is malformed, or was made for another
    sort or order (its key means nothing there)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # orjson: nesting is bounded (the stdlib decoder raised RecursionError on a cursor of
        # nested lists, a 500); the length is bounded by MAX_CURSOR_CHARS too.
        key = orjson.loads(raw)
    except (binascii.Error, ValueError):
        key = None
    if (
        not isinstance(key, list)
        or len(key) < 3
        or key[0] not in FLIGHT_SORTS
        or key[1] not in ("asc", "desc")
        or key[2] not in ("next", "prev")
        or len(key) != 3 + len(_key_names(key[0]))
        or not all(_key_value_ok(v) for v in key[3:])
        # the text sorts carry a text value, every other key value is an integer
        or (key[0] in _TEXT_SORTS and not isinstance(key[3], str))
        or not all(isinstance(v, int) for v in key[4 if key[0] in _TEXT_SORTS else 3 :])
    ):
        raise ValidationProblem([{"field": "cursor", "message": "malformed cursor"}])
    if (key[0], key[1]) != (sort, order):
        raise ValidationProblem(
            [
                {
                    "field": "cursor",
                    "message": f"this cursor belongs to sort={key[0]}&order={key[1]}, not "
                    f"sort={sort}&order={order}; start again from the first page",
                }
            ]
        )
    return key[2], dict(zip(_key_names(sort), key[3:], strict=True))


def _nullable(sort: str) -> bool:
    return "$nulls" in (FLIGHT_SORTS[sort] or "")


# A write's JSON body, validated by `validated_body` (not by FastAPI) so that the schema's
# field errors and the rules that need the database are reported in one 422. The OpenAPI
# document still names FlightCreate / FlightPatch (api/openapi.py).
RawBody = Annotated[dict[str, Any], Body()]
M = TypeVar("M", FlightCreate, FlightPatch)


def validated_body(
    db: duckdb.DuckDBPyConnection,
    model: type[M],
    raw: dict[str, Any],
    years: YearRange,
    flight_id: int | None = None,
) -> M:
    """`raw` as a `model` (FlightCreate or FlightPatch). When some fields break the schema,
    raises `ValidationProblem` with those errors AND the failures of `check_flight` over the
    fields that are valid (merged with the stored flight `flight_id` for a PATCH), so a client
    learns every invalid field at once. A body the schema accepts is returned for the route's
    own `check_flight` (which needs the write's transaction for a PATCH)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = field_errors(exc.errors())
    bad = {error["field"] for error in errors}
    try:
        # Every field is optional in FlightPatch: this keeps (validated) what passed.
        valid = FlightPatch.model_validate({k: v for k, v in raw.items() if k not in bad})
    except ValidationError:
        raise ValidationProblem(errors) from None
    record = valid.model_dump(include=valid.model_fields_set)
    if flight_id is not None:
        if not 1 <= flight_id <= MAX_BIGINT:
            raise ValidationProblem(errors)
        stored = run_query(db, "flight_get", {"id": flight_id}).first()
        if stored is None:  # the 422 first, as for a body FastAPI refuses
            raise ValidationProblem(errors)
        record = {name: stored[name] for name in INPUT_FIELDS} | record
    try:
        check_flight(db, record, years, skip=bad)
    except ValidationProblem as rules:
        errors += rules.errors
    raise ValidationProblem(errors)


def check_flight(
    db: duckdb.DuckDBPyConnection,
    record: dict[str, Any],
    years: YearRange,
    skip: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Rules over the whole (merged) record: required fields present, a year the data holds
    (`years`, api/db/lifecycle.py), a real date, a known carrier (airlines table), an origin
    that flights leave from. Raises `ValidationProblem`
    listing every failure; returns None when the record is valid. Fields in `skip` already
    failed the schema: not reported again (a missing one is not "required" a second time)."""
    errors: list[FieldError] = [
        {"field": name, "message": f"{name} is required and must not be null"}
        for name in REQUIRED_FIELDS
        if record.get(name) is None
    ]
    year, month, day = record.get("year"), record.get("month"), record.get("day")
    year_error = None if year is None else years.error(year)
    if year_error is not None:
        errors.append({"field": "year", "message": year_error})
    elif year is not None and month is not None and day is not None:
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
    errors = [error for error in errors if error["field"] not in skip]
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


DelayFilter = Annotated[
    int | None, Query(ge=-MAX_DELAY_MINUTES, le=MAX_DELAY_MINUTES, description="minutes")
]


@router.get("", response_model=FlightPage)
def list_flights(
    db: Cursor,
    results: Results,
    origin: AirportFilter = None,
    dest: AirportFilter = None,
    carrier: CarrierFilter = None,
    date_from: IsoDate | None = None,
    date_to: IsoDate | None = None,
    min_dep_delay: DelayFilter = None,
    min_arr_delay: DelayFilter = None,
    cancelled: Annotated[
        bool | None,
        Query(description="true: only cancelled flights (no departure time); false: none"),
    ] = None,
    hour: Annotated[
        int | None, Query(ge=0, le=23, description="scheduled departure hour (local)")
    ] = None,
    sort: Annotated[
        SortName,
        Query(description="sort column; ties by scheduled departure then id; NULLs last"),
    ] = "date",
    order: SortOrder = "asc",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            description="next_cursor or prev_cursor of a page of this sort and order (opaque)",
            max_length=MAX_CURSOR_CHARS,
            pattern=CURSOR_PATTERN,
        ),
    ] = None,
) -> dict[str, Any]:
    """Flights matching the filters, sorted by `sort` in `order`, one page at a time.

    Filters are optional and combine with AND; dates inclusive. Returns at most `limit`
    rows, `total` (how many flights match the filters, all pages), `next_cursor` (null on the
    last page) and `prev_cursor` (null on the first page). Keyset pagination: every page, deep
    or not, costs one scan. 422 for a malformed cursor or one of another sort or order.
    """
    filters = {
        "origin": origin,
        "dest": dest,
        "carrier": carrier,
        "date_from": date_from,
        "date_to": date_to,
        "min_dep_delay": min_dep_delay,
        "min_arr_delay": min_arr_delay,
        "cancelled": cancelled,
        "hour": hour,
    }
    direction, after = decode_cursor(cursor, sort, order) if cursor else ("next", {})
    # The count does not depend on the page: reused until the next write (api/db/cache.py),
    # so paging through a search runs it once.
    total = results.run(db, "flight_count", filters).scalar()

    def page(page_order: str, key: dict[str, Any]) -> list[dict[str, Any]]:
        params = {
            **filters,
            "limit": limit + 1,  # one extra row tells whether another page exists
            # NULLs last in this search's order, whichever order the statement runs
            **({"nulls": _nulls(order)} if _nullable(sort) else {}),
            **{f"after_{name}": key.get(name) for name in _key_names(sort)},
        }
        return run_query(db, flight_list_name(sort, page_order), params).dicts()

    if direction == "prev":
        # The page before a row = the rows after it in the opposite order, reversed.
        rows = page("desc" if order == "asc" else "asc", after)
        if len(rows) > limit:
            items = rows[:limit][::-1]
            return {
                "items": items,
                "total": total,
                "next_cursor": encode_cursor(items[-1], sort, order, "next"),
                "prev_cursor": encode_cursor(items[0], sort, order, "prev"),
            }
        # Reached the start: answer the first page itself, full and with the first page's
        # cursors (a short page here would shift every page after it).
        after = {}
    rows = page(order, after)
    items = rows[:limit]
    return {
        "items": items,
        "total": total,
        "next_cursor": encode_cursor(items[-1], sort, order, "next") if len(rows) > limit else None,
        "prev_cursor": encode_cursor(items[0], sort, order, "prev") if after and items else None,
    }


@router.get("/{flight_id}", response_model=FlightDetail)
def get_flight(db: Cursor, results: Results, flight_id: int) -> dict[str, Any]:
    """One flight by id with the names (and time zones) of its airports and its aircraft,
    each null when the reference tables do not know it; 404 when there is no such flight."""
    flight = _get_flight(db, flight_id)
    airports = results.keep(("airport_refs",), lambda: _references(db, "airport_refs", "faa"))
    planes = results.keep(("plane_refs",), lambda: _references(db, "plane_refs", "tailnum"))
    # Several real destinations are absent from airports, many tail numbers from planes.
    flight["origin_airport"] = airports.get(flight["origin"])
    flight["dest_airport"] = airports.get(flight["dest"])
    flight["plane"] = planes.get(flight["tailnum"]) if flight["tailnum"] is not None else None
    return flight


def _references(db: duckdb.DuckDBPyConnection, name: str, key: str) -> dict[str, dict[str, Any]]:
    """A whole reference table as {key: its other columns} ("airport_refs" by faa,
    "plane_refs" by tailnum): a few thousand small rows, kept for the life of the process."""
    return {row.pop(key): row for row in run_query(db, name).dicts()}


@router.post("", response_model=Flight, status_code=status.HTTP_201_CREATED)
def create_flight(
    request: Request,
    db: Cursor,
    ids: FlightIds,
    writes: GroupWrites,
    raw: RawBody,
    response: Response,
    years: DataYears,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Create a flight with a new id; 201 with a Location header, 422 on bad input.

    Validation reads before the write, the id comes from the process's block (api/db/ids.py)
    and the answer is the row as the INSERT wrote it (RETURNING): the write is one statement
    that no concurrent create conflicts with, committed in a group (api/db/batch.py). With an
    `Idempotency-Key` a repeat gets the first answer again (api/idempotency.py).
    """
    body = validated_body(db, FlightCreate, raw, years)
    with idempotency.claim(request, db, idempotency_key, body.model_dump()) as claim:
        if claim.replay is not None:
            return claim.replay
        record = body.model_dump()
        check_flight(db, record, years)
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
    raw: RawBody,
    years: DataYears,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Apply the fields sent to a stored flight; the merged record must be valid.

    404 for an unknown id, 422 if the merged record breaks a rule (nothing is written). The
    answer is the row as this request's own transaction wrote it (UPDATE ... RETURNING), never
    a later re-read that could show another writer's values. With an `Idempotency-Key` the
    key and this answer are stored in the same transaction; a repeat gets it again.
    """
    body = validated_body(db, FlightPatch, raw, years, flight_id=flight_id)
    changes = body.model_dump(include=body.model_fields_set)
    with idempotency.claim(request, db, idempotency_key, changes) as claim:
        if claim.replay is not None:
            return claim.replay
        return _patch(db, flight_id, changes, years, claim)


def _patch(
    db: duckdb.DuckDBPyConnection,
    flight_id: int,
    changes: dict[str, Any],
    years: YearRange,
    claim: idempotency.Claim,
) -> dict[str, Any]:

    def update() -> dict[str, Any]:
        # Read, check and write in one transaction: a concurrent change makes it conflict
        # (and retry) instead of being silently overwritten.
        with transaction(db):
            stored = _get_flight(db, flight_id)
            record = {name: stored[name] for name in INPUT_FIELDS} | changes
            check_flight(db, record, years)
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
