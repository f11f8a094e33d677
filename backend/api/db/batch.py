"""Group commit: the single-statement writes of concurrent requests share one transaction.

Every DuckDB commit writes and syncs the WAL (about 3.6 ms per fsync on the reference
machine, docs/resilience.md), one commit at a time, so one commit per create capped the
backend near 150 creates/s however many writers there were. `GroupCommit.execute` hands the
statement to one writer thread, which takes every write queued meanwhile (up to `MAX_BATCH`)
and runs them in ONE transaction: one WAL sync for the whole batch. Each caller gets its own
statement's result (e.g. INSERT ... RETURNING) once the COMMIT returned, so an answered write
is a committed write; with nothing else queued a write runs alone in autocommit.

If a batch fails, its writes run again one by one, so each caller gets the outcome of its own
statement only (a failing write never fails its neighbours; a full disk fails each of them
with `StorageWriteError`). Statements run in their caller's context (contextvars: the
request's span and log context), so traces and logs look as if the request ran them itself;
the batch's BEGIN/COMMIT belong to the trace of its first write.

Only for statements that are complete writes on their own (today: `flight_insert`); a
read-modify-write (PATCH) keeps its own transaction.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import duckdb

from api.db.database import Database, QueryResult, retry_on_conflict, run_query, transaction

logger = logging.getLogger(__name__)

# Writes per transaction at most (a few ms of DuckDB work, well under any client timeout).
MAX_BATCH = 64


@dataclass
class _Write:
    name: str
    params: Mapping[str, Any]
    context: contextvars.Context
    result: Future[QueryResult] = field(default_factory=Future)


_STOP = object()


class GroupCommit:
    """One writer thread per process that commits queued writes together (see module doc).

    `execute(database, name, params)` blocks until the write is committed and returns its
    `QueryResult`, or raises what running it alone raised (`duckdb.Error`,
    `StorageWriteError`, `WriteConflictError`). `stop()` ends the thread (shutdown).
    """

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Write | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def execute(self, database: Database, name: str, params: Mapping[str, Any]) -> QueryResult:
        """Run the named write as part of the next batch; return once it is committed."""
        write = _Write(name, params, contextvars.copy_context())
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, args=(database,), name="group-commit", daemon=True
                )
                self._thread.start()
        self._queue.put(write)
        return write.result.result()

    def stop(self) -> None:
        """Finish the queued writes and end the writer thread (before closing the database)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout=30)

    def _run(self, database: Database) -> None:
        cursor = database.cursor()
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                assert isinstance(first, _Write)
                batch = [first]
                stop_after = False
                while len(batch) < self.max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop_after = True
                        break
                    assert isinstance(item, _Write)
                    batch.append(item)
                self._commit(cursor, batch)
                if stop_after:
                    return
        finally:
            cursor.close()

    def _commit(self, cursor: duckdb.DuckDBPyConnection, batch: list[_Write]) -> None:
        if len(batch) == 1:
            write = batch[0]
            try:
                write.result.set_result(
                    write.context.run(retry_on_conflict, lambda: self._alone(cursor, write))
                )
            except BaseException as exc:
                write.result.set_exception(exc)
            return
        try:
            results = batch[0].context.run(retry_on_conflict, lambda: self._together(cursor, batch))
        except BaseException as exc:
            logger.warning(
                "a batch of %d writes failed (%s); running them one by one", len(batch), exc
            )
            for write in batch:
                self._commit(cursor, [write])
            return
        for write, result in zip(batch, results, strict=True):
            write.result.set_result(result)

    @staticmethod
    def _alone(cursor: duckdb.DuckDBPyConnection, write: _Write) -> QueryResult:
        return run_query(cursor, write.name, write.params)  # autocommit

    @staticmethod
    def _together(cursor: duckdb.DuckDBPyConnection, batch: list[_Write]) -> list[QueryResult]:
        # Runs inside the first write's context; every other write in its own.
        with transaction(cursor):
            first = batch[0]
            results = [run_query(cursor, first.name, first.params)]
            results.extend(
                write.context.run(run_query, cursor, write.name, write.params)
                for write in batch[1:]
            )
        return results
