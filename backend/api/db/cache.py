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

`refresh_behind` is the exception to "until the next write", for the stats views' partials
(api/routes/stats.py): after a write it returns the value from before the write at once and
recomputes it in ONE background thread, at most once per `refresh_seconds`
(`STATS_REFRESH_SECONDS`); the new value replaces it when that finishes. Waiting for those
aggregates after every write made the dashboard's p95 seconds long on a busy machine, and
recomputing them after every write took a third of DuckDB's time under the load gate's
writes (docs/performance.md): the figures lag a write by at most `refresh_seconds` plus one
recomputation instead.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar, cast

import duckdb
import structlog
from cachetools import LRUCache

from api.db.database import QueryResult, run_query, write_generation

# Named queries `run` may reuse: the small reference lists and the search's match count
# (the same on every page of a search). (The stats routes keep their partials and finished
# JSON bodies through `refresh_behind` and `reuse` instead.)
CACHEABLE = frozenset({"airlines_list", "airports_list", "flight_count"})
# Distinct (query, parameters) entries kept: the dashboard has 3 origins x 13 months per
# aggregate; a few hundred small results are well under a megabyte.
MAX_ENTRIES = 256

T = TypeVar("T")

logger = structlog.get_logger(__name__)


class ResultCache:
    """A bounded, thread-safe cache of values derived from the database (see the module doc).

    `run` reuses `QueryResult`s of the `CACHEABLE` named queries; `reuse` keeps any value
    computed from the database (e.g. a rendered JSON body) under a key of the caller's
    choosing, dropped at the next write; `keep` keeps values of tables the API never writes;
    `refresh_behind` keeps a value across writes and recomputes it in the background.
    """

    def __init__(
        self,
        maxsize: int = MAX_ENTRIES,
        refresh_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`maxsize`: entries `reuse`/`run` keep; `refresh_seconds`: the least time between
        two computations of one `refresh_behind` key (`STATS_REFRESH_SECONDS`), on `clock`
        (seconds; tests pass their own)."""
        self._entries: LRUCache[Hashable, Any] = LRUCache(maxsize=maxsize)
        # Values of tables the API never writes (`keep`): not dropped by writes.
        self._kept: dict[Hashable, Any] = {}
        self._generation = write_generation()
        self._lock = threading.Lock()
        # One lock per key of `refresh_behind` (a handful: the stats views' partials).
        self._computing: dict[Hashable, threading.Lock] = {}
        # `refresh_behind`: key -> (value, write generation it was computed at), kept across
        # writes; the keys being recomputed in the background.
        self._behind: dict[Hashable, tuple[Any, int]] = {}
        self._refreshing: set[Hashable] = set()
        self._refresh_seconds = refresh_seconds
        self._threads: set[threading.Thread] = set()  # running background recomputations
        self._clock = clock
        self._computed_at: dict[Hashable, float] = {}  # self._clock() a computation began

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

    def peek(self, key: Hashable) -> Any:
        """The value `reuse` keeps under `key`, or None (nothing computed, nothing blocks)."""
        return self._lookup(key, write_generation())

    def behind(self, key: Hashable, compute: Callable[[], T]) -> tuple[T, int] | None:
        """The value `refresh_behind` keeps under `key` and its version, or None when it was
        never computed. Never blocks: when the value is older than the last write it is
        returned all the same, and one background thread (`compute`, in a copy of the
        caller's context, so its spans join the caller's trace) recomputes it, unless one
        already does or the last computation began less than `refresh_seconds` ago (then a
        later call starts it). The version is the write generation the value was computed
        at."""
        generation = write_generation()
        now = self._clock()
        with self._lock:
            entry = self._behind.get(key)
            if entry is None:
                return None
            start = (
                entry[1] < generation
                and key not in self._refreshing
                and now - self._computed_at[key] >= self._refresh_seconds
            )
            if start:
                self._refreshing.add(key)
                self._computed_at[key] = now
        if start:
            context = contextvars.copy_context()
            thread = threading.Thread(
                target=context.run, args=(self._refresh, key, compute), daemon=True
            )
            with self._lock:  # started under the lock: `wait_for_refreshes` joins only started ones
                self._threads.add(thread)
                thread.start()
        return cast(tuple[T, int], entry)

    def refresh_behind(self, key: Hashable, compute: Callable[[], T]) -> tuple[T, int]:
        """`behind`, but the first computation of `key` happens here, once for concurrent
        callers (the others wait for it). Blocking: call it from a thread."""
        entry = self.behind(key, compute)
        if entry is not None:
            return entry
        with self._lock:
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:
            with self._lock:
                kept = self._behind.get(key)  # another thread may have just computed it
            if kept is not None:
                return cast(tuple[T, int], kept)
            generation = write_generation()  # before computing (see the module doc)
            began = self._clock()
            value = compute()  # an exception is never kept
            with self._lock:
                self._behind[key] = (value, generation)
                self._computed_at[key] = began
            return value, generation

    def _refresh(self, key: Hashable, compute: Callable[[], Any]) -> None:
        """Recompute a `refresh_behind` value (a background thread of `behind`). A failure
        keeps the old value (the next call after a write tries again) and is logged."""
        try:
            generation = write_generation()
            value = compute()
            with self._lock:
                if self._behind[key][1] < generation:
                    self._behind[key] = (value, generation)
        except Exception:  # any failure: the old value stays, the next request retries
            logger.warning("cache.refresh_failed", key=repr(key), exc_info=True)
        finally:
            with self._lock:
                self._refreshing.discard(key)
                self._threads.discard(threading.current_thread())

    def wait_for_refreshes(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds in all for the running background recomputations;
        True when none is left. Called before the database closes: closing the DuckDB
        connection while a cursor of it runs a query raises "Resource In Use Error: connection
        is busy with another call" (duckdb 1.x, tried in-process)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)

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
