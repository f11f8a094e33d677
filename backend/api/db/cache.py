"""Reuse of read-only query results until the data changes (the dashboard's aggregates).

`ResultCache.run(cursor, name, params)` returns the result of the named query for these
parameters from a small bounded LRU cache (cachetools) when the database has not been written
since it was computed, and runs it through `run_query` otherwise. Entries are keyed by
(write generation, query name, parameters); `api.db.database` bumps the generation after every
statement that may change data (COMMIT, autocommit INSERT/UPDATE/DELETE, DDL), so the next call
after a committed write recomputes.

Why an in-process cache is coherent here: exactly ONE process owns the DuckDB file (DuckDB
allows one writer process; the backend runs a single uvicorn process), so every write passes
through this process's `run_query` and bumps the counter. Ordering makes it race-free: the
generation is read BEFORE the query runs, and bumped only AFTER a COMMIT returned, so a result
computed from a snapshot older than a write is always filed under an older generation, which
no later lookup uses. Run a second writer process against the file and this no longer holds
(DuckDB refuses that anyway).

Only for named queries whose result depends on nothing but the database and the parameters
(`CACHEABLE`). A hit skips the query span and the DuckDB metrics: no query ran.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar, cast

import duckdb
from cachetools import LRUCache
from starlette.concurrency import run_in_threadpool

from api.db.database import QueryResult, run_query, write_generation

# Named queries `run` may reuse: the small reference lists and the search's match count
# (the same on every page of a search). (The stats routes keep their finished JSON bodies
# through `reuse_async` instead.)
CACHEABLE = frozenset({"airlines_list", "airports_list", "flight_count"})
# Distinct (query, parameters) entries kept: the dashboard has 3 origins x 13 months per
# aggregate; a few hundred small results are well under a megabyte.
MAX_ENTRIES = 256

T = TypeVar("T")


class ResultCache:
    """A bounded, thread-safe cache of values derived from the database (see the module doc).

    `run` reuses `QueryResult`s of the `CACHEABLE` named queries; `reuse`/`reuse_async` keep
    any value computed from the database (e.g. a rendered JSON body) under a key of the
    caller's choosing. Every entry is dropped at the next write.
    """

    def __init__(self, maxsize: int = MAX_ENTRIES) -> None:
        self._entries: LRUCache[Hashable, Any] = LRUCache(maxsize=maxsize)
        # Values of tables the API never writes (`keep`): not dropped by writes.
        self._kept: dict[Hashable, Any] = {}
        self._generation = write_generation()
        self._lock = threading.Lock()
        # One lock per key of `reuse_once` (a handful: the stats views' partials per year).
        self._computing: dict[Hashable, threading.Lock] = {}

    def _lookup(self, key: Hashable, generation: int) -> Any:
        with self._lock:
            if generation > self._generation:
                # Older entries can never be hit again: free them at once.
                self._entries.clear()
                self._generation = generation
            return self._entries.get(key) if generation == self._generation else None

    def _store(self, key: Hashable, generation: int, value: Any) -> None:
        with self._lock:
            if self._generation == generation:
                self._entries[key] = value

    def keep(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value kept under `key`, or `compute()` (then kept for the life of the process).

        Only for values read from tables the API never writes (airports, planes): only
        `load-demo-data` and migrations write them, and both hold the database file, so no
        server process runs meanwhile. Re-reading them after every flight write cost 5 % of the
        DuckDB time of a load-gate run (docs/performance.md)."""
        with self._lock:
            hit = self._kept.get(key)
        if hit is not None:
            return cast(T, hit)
        value = compute()  # an exception is never kept
        with self._lock:
            return cast(T, self._kept.setdefault(key, value))

    def reuse(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value kept under `key`, or `compute()` (then kept until the next write)."""
        generation = write_generation()  # before computing (see the module doc)
        hit = self._lookup(key, generation)
        if hit is not None:
            return cast(T, hit)
        value = compute()  # an exception is never cached
        self._store(key, generation, value)
        return value

    def reuse_once(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`reuse`, but concurrent misses of one key compute it once: the others wait for the
        first and take its value. For values shared by many requests (the stats partials: after
        a write every dashboard filter needs the same one). Blocking: call it from a thread."""
        hit = self._lookup(key, write_generation())
        if hit is not None:
            return cast(T, hit)
        with self._lock:
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:
            return self.reuse(key, compute)

    async def reuse_async(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`reuse` for the event loop: a hit costs no thread; a miss runs `compute` (blocking,
        e.g. DuckDB) in the threadpool, with the request's context (spans nest as usual)."""
        generation = write_generation()
        hit = self._lookup(key, generation)
        if hit is not None:
            return cast(T, hit)
        value = await run_in_threadpool(compute)
        self._store(key, generation, value)
        return value

    def run(
        self,
        cursor: duckdb.DuckDBPyConnection,
        name: str,
        params: Mapping[str, Any] | None = None,
    ) -> QueryResult:
        """The result of `run_query(cursor, name, params)`, reused while no write happened."""
        if name not in CACHEABLE:
            raise ValueError(f"query {name!r} is not cacheable")
        key = (name, *sorted((params or {}).items()))
        return self.reuse(key, lambda: run_query(cursor, name, params))
