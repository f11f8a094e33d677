"""FastAPI dependencies shared by the routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import duckdb
from fastapi import Depends, Request

from api.db.batch import GroupCommit
from api.db.cache import ResultCache
from api.db.database import Database, DatabaseNotReadyError
from api.db.ids import IdBlocks
from api.db.lifecycle import lifecycle_of
from api.schemas import YearRange


def get_database(request: Request) -> Database:
    """The app's open `Database`; raises `DatabaseNotReadyError` (503) before start-up ends."""
    database = lifecycle_of(request.app.state).database
    if database is None:
        raise DatabaseNotReadyError("database is not open")
    return database


def get_cursor(request: Request) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of its own for this request, closed when the response is done."""
    cursor = get_database(request).cursor()
    try:
        yield cursor
    finally:
        cursor.close()


Cursor = Annotated[duckdb.DuckDBPyConnection, Depends(get_cursor)]


async def get_results(request: Request) -> ResultCache:
    """The app's cache of reusable query results (api/db/cache.py).

    `async` on purpose: FastAPI runs plain `def` dependencies in the threadpool, a hop that
    cost more than a cache hit itself (py-spy, docs/performance.md)."""
    results: ResultCache = request.app.state.results
    return results


Results = Annotated[ResultCache, Depends(get_results)]


async def get_data_years(request: Request) -> YearRange:
    """The years the data holds, a flight write's accepted range (api/db/lifecycle.py);
    async: no threadpool hop."""
    return lifecycle_of(request.app.state).years


DataYears = Annotated[YearRange, Depends(get_data_years)]


async def get_flight_ids(request: Request) -> IdBlocks:
    """The app's source of new flight ids (api/db/ids.py); async: no threadpool hop."""
    ids: IdBlocks = request.app.state.flight_ids
    return ids


FlightIds = Annotated[IdBlocks, Depends(get_flight_ids)]


async def get_group_writes(request: Request) -> GroupCommit:
    """The app's group commit of single-statement writes (api/db/batch.py)."""
    writes: GroupCommit = request.app.state.group_writes
    return writes


GroupWrites = Annotated[GroupCommit, Depends(get_group_writes)]
