"""Group commit: the creates of concurrent requests are written by ONE statement and commit.

A single INSERT costs DuckDB about 2.5-3 ms (its index and append work, even inside a
transaction) and every commit syncs the WAL (3.6 ms per fsync on the reference machine, one
commit at a time): one statement and one commit per create capped the backend near 150
creates/s however many writers there were (docs/resilience.md). `GroupCommit.execute` hands a
create to one writer thread, which takes every create queued meanwhile (up to `MAX_BATCH`)
and writes them with one multi-row statement (`flight_insert_batch`: each parameter a list,
one value per row) in autocommit: one statement, one WAL sync for the whole batch (20 rows:
about 6 ms instead of 20 x 6 ms). Each caller gets its own row (matched by id from RETURNING)
once the statement committed, so an answered create is a committed create.

If a batch fails, its rows are written again one by one, so each caller gets the outcome of
its own row only (a failing row never fails its neighbours; a full disk fails each of them
with `StorageWriteError`). The statement runs in the context (contextvars: span and log
context) of the batch's first create, so its DuckDB span and metrics belong to that trace.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import duckdb
import structlog

from api.db.database import Database, retry_on_conflict, run_query, transaction

logger = structlog.get_logger(__name__)

# Rows per statement at most (a few ms of DuckDB work, far below any client timeout).
MAX_BATCH = 64


@dataclass
class _Write:
    params: Mapping[str, Any]
    context: contextvars.Context
    record: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    result: Future[dict[str, Any]] = field(default_factory=Future)


_STOP = object()


class GroupCommit:
    """One writer thread per process that inserts queued rows together (see module doc).

    `query` is a named multi-row INSERT ... RETURNING whose parameters are lists (one value
    per row) of the parameters each caller passes, and whose returned rows carry `key`.
    `execute(database, params)` blocks until the row is committed and returns it as a dict,
    or raises what writing it alone raised (`duckdb.Error`, `StorageWriteError`,
    `WriteConflictError`). `stop()` ends the thread (shutdown, before closing the database).

    `record_query` (optional) is a second multi-row statement written in the same transaction
    for the callers that pass `record` (a function of their returned row giving that
    statement's parameters for one row): the idempotency keys of creates (api/idempotency.py).
    """

    def __init__(
        self,
        query: str,
        key: str = "id",
        max_batch: int = MAX_BATCH,
        record_query: str | None = None,
    ) -> None:
        self.query = query
        self.record_query = record_query
        self.key = key
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Write | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def execute(
        self,
        database: Database,
        params: Mapping[str, Any],
        record: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Insert the row `params` with the next batch (and `record(row)` with `record_query`
        in the same transaction); return the row once it is committed."""
        if record is not None and self.record_query is None:
            raise ValueError("this GroupCommit has no record_query")
        write = _Write(params, contextvars.copy_context(), record)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, args=(database,), name="group-commit", daemon=True
                )
                self._thread.start()
        self._queue.put(write)
        return write.result.result()

    def stop(self) -> None:
        """Write what is queued and end the writer thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout=30)

    def _run(self, database: Database) -> None:
        cursor = database.cursor()
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                while len(batch) < self.max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                self._write([w for w in batch if isinstance(w, _Write)], cursor)
        finally:
            cursor.close()

    def _write(self, batch: list[_Write], cursor: duckdb.DuckDBPyConnection) -> None:
        names = list(batch[0].params)
        lists = {name: [w.params[name] for w in batch] for name in names}
        recorded = [w for w in batch if w.record is not None]

        def write() -> dict[Any, dict[str, Any]]:
            if not recorded:  # autocommit: one statement
                return {row[self.key]: row for row in run_query(cursor, self.query, lists).dicts()}
            with transaction(cursor):
                rows = {row[self.key]: row for row in run_query(cursor, self.query, lists).dicts()}
                extra = [w.record(rows[w.params[self.key]]) for w in recorded if w.record]
                params = {name: [e[name] for e in extra] for name in extra[0]}
                run_query(cursor, self.record_query or "", params)  # set: execute() checks
            return rows

        try:
            rows = batch[0].context.run(retry_on_conflict, write)
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].result.set_exception(exc)
                return
            logger.warning(
                "batch.write_failed", rows=len(batch), error=str(exc), retry="one_by_one"
            )
            for item in batch:
                self._write([item], cursor)
            return
        for item in batch:
            row = rows.get(item.params[self.key])
            if row is None:  # pragma: no cover - RETURNING returns every inserted row
                item.result.set_exception(RuntimeError("the insert returned no row"))
            else:
                item.result.set_result(row)
