"""The process's single DuckDB database and the one function that runs SQL.

DuckDB facts that shape this module: only one process may open the file read-write (others
fail with "Could not set lock on file"); a connection must not be shared across threads, so
every request gets its own `cursor()`; writers use optimistic concurrency, so conflicting
transactions fail at once and are retried here.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_when_event_set,
    wait_fixed,
    wait_random_exponential,
)

from api import faults
from api.db.queries import QUERIES, SCRIPT_NAMES
from api.observability import database as telemetry
from api.observability import switch

logger = structlog.get_logger(__name__)

T = TypeVar("T")
Params = Mapping[str, Any] | Sequence[Any]

# The app's database status while another process holds the file (shown by the probes).
WAITING_FOR_LOCK = "waiting for the lock held by another process"
# How often a rolling deploy's new backend tries the old one's lock (seconds): every try costs
# a failed open (well under a millisecond); the gap between the old one closing the file and
# the new one serving is at most this long.
LOCK_POLL_SECONDS = 0.1
LOCK_RETRIES_PER_LOG_LINE = 50

# How often a write transaction that hit a write-write conflict is attempted in total.
WRITE_ATTEMPTS = 5

# The write generation: bumped after every statement that may have changed data (anything
# but a SELECT: INSERT/UPDATE/DELETE in autocommit, COMMIT, DDL, ...). Result caches
# (api/db/cache.py) key their entries by it, so a committed write invalidates them at once.
# One process owns the database file (DuckDB allows one writer process, and the backend runs
# exactly one), so every write passes through here and an in-process counter is coherent.
_generation = 0
_generation_lock = threading.Lock()


def write_generation() -> int:
    """The current write generation (read it BEFORE running a query whose result is kept)."""
    return _generation


def _data_changed() -> None:
    global _generation
    with _generation_lock:
        _generation += 1


@dataclass
class WriteHealth:
    """Outcome of the latest writes of this process (what `/readyz` reports as `writes`).

    Times are `time.monotonic()` seconds; None until the first write. Updated by `run_query`
    for every statement that writes (INSERT, UPDATE, DELETE, COMMIT, CHECKPOINT, DDL).
    """

    last_success: float | None = None
    last_failure: float | None = None
    last_failure_reason: str = ""
    failures: int = 0  # since the last success

    def reset(self) -> None:
        """Forget every outcome (a newly opened database)."""
        self.last_success = self.last_failure = None
        self.last_failure_reason = ""
        self.failures = 0

    def record_success(self) -> None:
        self.last_success = time.monotonic()
        self.failures = 0

    def record_failure(self, reason: str) -> None:
        self.last_failure = time.monotonic()
        self.last_failure_reason = reason
        self.failures += 1

    def failing_since(self, window_seconds: float) -> str | None:
        """Why writes fail, when the latest write failed less than `window_seconds` ago."""
        failed, succeeded = self.last_failure, self.last_success
        if failed is None or (succeeded is not None and succeeded > failed):
            return None
        age = time.monotonic() - failed
        if age > window_seconds:
            return None
        return (
            f"{self.failures} write(s) failed, the latest {age:.0f} s ago: "
            f"{self.last_failure_reason}"
        )


# One database per process (the backend is one process): its writes' health. Reset when a
# database is opened, so tests that open several databases in one process start clean.
WRITE_HEALTH = WriteHealth()

# Statements whose success proves that a write reached the file.
_WRITE_OPERATIONS = frozenset({"INSERT", "UPDATE", "DELETE", "COMMIT", "CHECKPOINT"})


def is_storage_error(exc: BaseException) -> bool:
    """True for failures to write the database or its WAL (disk full, I/O error)."""
    if not isinstance(exc, duckdb.Error) or is_write_conflict(exc):
        return False
    text = str(exc)
    return isinstance(exc, duckdb.IOException) or any(
        marker in text for marker in ("No space left", "Could not write", "Failed to commit")
    )


class DatabaseNotReadyError(RuntimeError):
    """The database is not open (start-up not finished, or shutting down). Maps to 503."""


class DatabaseLockedError(RuntimeError):
    """Another process held the database file's lock for longer than the lock timeout."""


class DatabaseOpenError(RuntimeError):
    """The database file cannot be opened at all (corrupt header, truncated, a directory, an
    unwritable directory, a write-ahead log that cannot be replayed, a parent that is a file).

    `reason` is one line for operators (what is wrong and where); `detail` DuckDB's or the
    operating system's own first line. Restarting does not help: someone must fix the file.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason} ({detail})")
        self.reason = reason
        self.detail = detail


class StorageWriteError(RuntimeError):
    """A write could not be stored (e.g. disk full); nothing of it was committed. Maps to 503."""


class WriteConflictError(RuntimeError):
    """A write transaction still conflicted after `WRITE_ATTEMPTS` attempts. Maps to 409."""


@dataclass(frozen=True)
class QueryResult:
    """Rows of one statement: `columns` (names) and `rows` (tuples, fully fetched)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        """All rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def first(self) -> dict[str, Any] | None:
        """The first row as a dict, or None when there are no rows."""
        return dict(zip(self.columns, self.rows[0], strict=True)) if self.rows else None

    def scalar(self) -> Any:
        """The first column of the first row (None when there are no rows)."""
        return self.rows[0][0] if self.rows else None


def run_query(
    cursor: duckdb.DuckDBPyConnection,
    name: str,
    params: Params | None = None,
    *,
    sql: str | None = None,
) -> QueryResult:
    """Run the named statement on `cursor` and fetch all of its rows.

    This is the single choke point for SQL: every statement the application runs passes
    here, identified by `name` (a key of `QUERIES`, or a name in `SCRIPT_NAMES` together with
    `sql` for migration DDL). `params` are bound by DuckDB, never formatted into the SQL.
    Raises `KeyError`/`ValueError` for an unknown name and `duckdb.Error` from DuckDB.

    Telemetry (docs/observability.md): a CLIENT span named `name` (child of the current span,
    e.g. the request's server span: anyio copies the context into the threadpool), and the
    `duckdb_query_duration_seconds{query, outcome}` histogram (execute + fetch, with a trace
    exemplar) plus `duckdb_query_returned_rows_total{query}`.
    """
    if sql is None:
        statement = QUERIES[name]
    elif name in SCRIPT_NAMES:
        statement = sql
    else:
        raise ValueError(f"query {name!r} may not carry its own SQL")

    def execute() -> QueryResult:
        return _observe_writes(statement, lambda: _execute(cursor, statement, params))

    # TELEMETRY_ENABLED=false, or the readiness checks' own reads (a heartbeat twice a second
    # and a full read a minute, api/db/checks.py): no span, no metric observation.
    if not switch.enabled() or name.startswith("readiness_"):
        return faults.run_with_query_fault(name, execute)
    with telemetry.query_span(name, statement) as span:
        started = time.perf_counter()
        try:
            result = faults.run_with_query_fault(name, execute)
        except BaseException:
            telemetry.observe_query(name, "error", time.perf_counter() - started)
            raise
        telemetry.observe_query(name, "ok", time.perf_counter() - started, len(result.rows))
        span.set_attribute("db.response.returned_rows", len(result.rows))
        return result


def _execute(
    cursor: duckdb.DuckDBPyConnection, statement: str, params: Params | None
) -> QueryResult:
    """Execute `statement` and fetch every row (no telemetry; `run_query` adds it).

    Bumps the write generation after any statement that is not a SELECT, once it returned:
    after COMMIT the new data is visible to every later query.
    """
    try:
        if params is None:
            cursor.execute(statement)
        else:
            cursor.execute(statement, params)
        if cursor.description is None:
            return QueryResult(columns=[], rows=[])
        return QueryResult(columns=[c[0] for c in cursor.description], rows=cursor.fetchall())
    finally:
        # Also on failure: a failed statement may have ended a transaction (rolled back).
        if telemetry.operation_name(statement) != "SELECT":
            _data_changed()


def _observe_writes(statement: str, execute: Callable[[], QueryResult]) -> QueryResult:
    """Run `execute`; for a writing statement record its outcome in `WRITE_HEALTH` and turn
    a storage failure (disk full, I/O error) into `StorageWriteError`."""
    operation = telemetry.operation_name(statement)
    if operation == "SELECT":
        return execute()
    try:
        result = execute()
    except duckdb.Error as exc:
        if is_storage_error(exc):
            reason = str(exc).splitlines()[0]
            WRITE_HEALTH.record_failure(reason)
            logger.error("database.write_failed", reason=reason)
            raise StorageWriteError(reason) from exc
        raise
    if operation in _WRITE_OPERATIONS:
        WRITE_HEALTH.record_success()
    return result


def _rollback_quietly(cursor: duckdb.DuckDBPyConnection) -> None:
    # After a failed COMMIT DuckDB has usually rolled back already; ROLLBACK then errors.
    with suppress(duckdb.Error):
        run_query(cursor, "rollback")


@contextmanager
def transaction(cursor: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN on entry; COMMIT on success, ROLLBACK on any exception (which is re-raised)."""
    run_query(cursor, "begin")
    try:
        yield
    except BaseException:
        _rollback_quietly(cursor)
        raise
    try:
        run_query(cursor, "commit")
    except (duckdb.Error, StorageWriteError):
        _rollback_quietly(cursor)
        raise


def is_write_conflict(exc: BaseException) -> bool:
    """True for DuckDB's optimistic-concurrency failures ("Conflict on update", ...)."""
    return isinstance(exc, duckdb.TransactionException) and "conflict" in str(exc).lower()


def retry_on_conflict(operation: Callable[[], T]) -> T:
    """Run `operation` (one whole transaction) again after a write-write conflict.

    Attempts it up to `WRITE_ATTEMPTS` times with a short random back-off (tens of ms);
    raises `WriteConflictError` if it still conflicts. Other errors pass through at once.
    """
    try:
        for attempt in Retrying(
            retry=retry_if_exception(is_write_conflict),
            stop=stop_after_attempt(WRITE_ATTEMPTS),
            wait=wait_random_exponential(multiplier=0.01, max=0.2),
            reraise=True,
        ):
            with attempt:
                return operation()
    except duckdb.Error as exc:
        if is_write_conflict(exc):
            raise WriteConflictError(
                f"write conflict persisted after {WRITE_ATTEMPTS} attempts"
            ) from exc
        raise
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "Could not set lock on file" in str(exc)


def successor_path(path: Path) -> Path:
    """`<path>.successor`: touched every LOCK_POLL_SECONDS by a process waiting for the lock
    of the database file at `path`, removed once it stops waiting (a rolling deploy's new
    backend tells the draining old one that it is there, api/__main__.py)."""
    return Path(f"{path}.successor")


def successor_waiting(path: Path, within: float = 2.0) -> bool:
    """Whether another process waited for the lock of `path` in the last `within` seconds."""
    try:
        return time.time() - successor_path(path).stat().st_mtime < within
    except OSError:
        return False


def _withdraw(marker: Path, announced: bool) -> None:
    """Remove the successor marker if this process wrote it. Never raises: on a read-only
    file system even removing a missing file fails (EROFS), and the open's own outcome is what
    matters (tests/test_database_faults.py::test_read_only_directory_exits_4)."""
    if announced:
        with contextlib.suppress(OSError):
            marker.unlink(missing_ok=True)


def wal_path(path: Path) -> Path:
    """DuckDB's write-ahead log of the database file at `path` (`<path>.wal`)."""
    return Path(f"{path}.wal")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _os_error_text(exc: OSError) -> str:
    return f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": ")


# DuckDB's messages (duckdb 2.0) for files it cannot open, and what they mean for an operator.
_OPEN_FAILURES = (
    ("Failure while replaying WAL", "its write-ahead log {wal} cannot be replayed (corrupt or "
     "unreadable); move the .wal file away to open the database without the changes it holds"),
    ("not a valid DuckDB database file", "{path} is not a DuckDB database file (corrupt header, "
     "or another kind of file)"),
    ("Could not read enough bytes", "{path} is truncated (shorter than its own header says)"),
    ("Corrupt database file", "{path} is corrupt (a block's checksum does not match)"),
    ("Is a directory", "{path} is a directory, not a database file"),
    ("Not a directory", "a parent of {path} is a file, not a directory"),
    ("Read-only file system", "{path} or its directory is not writable (read-only file system)"),
    ("Permission denied", "{path} or its directory is not writable (permission denied)"),
    ("No space left", "there is no space left on the device of {path}"),
)  # fmt: skip


def _open_failure_reason(exc: BaseException, path: Path) -> str:
    text = str(exc)
    for marker, reason in _OPEN_FAILURES:
        if marker in text:
            return reason.format(path=path, wal=wal_path(path))
    return f"DuckDB cannot open {path}"


class Database:
    """The process's one DuckDB connection; hands out a cursor per request/thread.

    Open with `Database.open(...)`; `cursor()` raises `DatabaseNotReadyError` once closed.
    `close()` runs CHECKPOINT (folds the WAL into the file) and closes the connection.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.path = path
        self._connection: duckdb.DuckDBPyConnection | None = connection
        # Creating cursors registers them on the parent connection: do it one at a time.
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        memory_limit: str = "1GB",
        threads: int = 2,
        lock_timeout_seconds: float = 30.0,
        cancel: threading.Event | None = None,
        on_lock_wait: Callable[[], None] | None = None,
    ) -> Database:
        """Open (creating the file and its directory if needed) the database at `path`.

        While another process holds the file's lock (e.g. the old container of a rolling
        deploy) retries every LOCK_POLL_SECONDS for up to `lock_timeout_seconds`, logging
        every LOCK_RETRIES_PER_LOG_LINE-th retry and calling `on_lock_wait` before each wait,
        then raises `DatabaseLockedError`; setting `cancel` ends the wait early the same way.
        `memory_limit` (e.g. "1GB") and `threads` bound DuckDB, which otherwise sizes itself
        from the host rather than the container.

        A write-ahead log left by a crash is replayed by DuckDB while it opens the file, but
        not folded into it: when one was there, this runs CHECKPOINT right after, so the WAL
        does not grow from crash to crash and the next start does not replay it again.

        Raises `DatabaseOpenError` (one-line reason) when the file cannot be opened at all.
        """
        cancel = cancel or threading.Event()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise DatabaseOpenError(
                f"a parent of {path} is a file, not a directory", _os_error_text(exc)
            ) from exc
        except OSError as exc:
            raise DatabaseOpenError(
                f"cannot create the directory of {path} (not writable?)", _os_error_text(exc)
            ) from exc
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": memory_limit,
            "threads": threads,
        }
        wal = wal_path(path)
        wal_bytes = wal.stat().st_size if wal.is_file() else 0

        marker = successor_path(path)
        announced = False

        def log_retry(state: RetryCallState) -> None:
            nonlocal announced
            if on_lock_wait is not None:
                on_lock_wait()
            # "A successor is waiting" (successor_waiting). In a read-only directory it cannot
            # be said: the holder then drains for its full time instead.
            with contextlib.suppress(OSError):
                marker.touch()
                announced = True
            if state.attempt_number % LOCK_RETRIES_PER_LOG_LINE != 1:
                return  # one line every few seconds is enough
            logger.warning(
                "database.locked",
                path=str(path),
                attempt=state.attempt_number,
                waited_seconds=round(state.seconds_since_start or 0.0, 1),
                timeout_seconds=lock_timeout_seconds,
            )

        def sleep_unless_cancelled(seconds: float) -> None:
            cancel.wait(seconds)  # returns at once when cancelled

        started = time.perf_counter()
        try:
            for attempt in Retrying(
                retry=retry_if_exception(_is_lock_error),
                stop=stop_after_delay(lock_timeout_seconds) | stop_when_event_set(cancel),
                wait=wait_fixed(min(LOCK_POLL_SECONDS, max(lock_timeout_seconds, 0.01))),
                sleep=sleep_unless_cancelled,
                before_sleep=log_retry,
                reraise=True,
            ):
                with attempt:
                    connection = duckdb.connect(str(path), config=config)
        except duckdb.Error as exc:
            _withdraw(marker, announced)
            if _is_lock_error(exc):
                raise DatabaseLockedError(
                    f"database file {path} is locked by another process; gave up after "
                    f"{lock_timeout_seconds} s (DB_LOCK_TIMEOUT_SECONDS). Only one backend "
                    f"process may use the file. DuckDB said: {exc}"
                ) from exc
            raise DatabaseOpenError(_open_failure_reason(exc, path), _first_line(exc)) from exc
        _withdraw(marker, announced)
        logger.info("database.opened", path=str(path), memory_limit=memory_limit, threads=threads)
        WRITE_HEALTH.reset()  # a fresh record for this database
        database = cls(connection, path)
        if wal_bytes:
            replayed = time.perf_counter() - started
            try:
                run_query(connection, "checkpoint")
            except (duckdb.Error, StorageWriteError) as exc:
                # Still usable (the WAL is replayed); the next CHECKPOINT or clean stop folds it.
                logger.error("database.checkpoint_failed", after="wal_replay", error=str(exc))
            else:
                logger.info(
                    "database.wal_replayed",
                    wal=str(wal),
                    wal_bytes=wal_bytes,
                    seconds=round(replayed, 2),
                    checkpointed=True,
                )
        return database

    @property
    def is_open(self) -> bool:
        """Whether the connection is open."""
        return self._connection is not None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor (a connection of its own to the same database); caller closes it."""
        with self._lock:
            if self._connection is None:
                raise DatabaseNotReadyError("database is not open")
            return self._connection.cursor()

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor that is closed when the block ends."""
        cursor = self.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def close(self) -> None:
        """CHECKPOINT (best effort, logged on failure) and close. Safe to call twice."""
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            run_query(connection, "checkpoint")
        except duckdb.Error:
            logger.exception("database.checkpoint_failed", after="close", path=str(self.path))
        connection.close()
        logger.info("database.closed", path=str(self.path))
