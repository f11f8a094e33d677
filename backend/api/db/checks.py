"""Readiness checks of the database: can the service serve? (`/readyz`, `/health`).

Three checks, each "ok" or a one-line reason:

- `database` (live): a heartbeat thread reads real rows (`readiness_read_rows`) twice a
  second, each read interrupted after READINESS_TIMEOUT_SECONDS; a probe reports the latest
  outcome without waiting (`Heartbeat`). `SELECT 1` read no data and said "ok" over a
  corrupt file.
- `data` (a full read): every block of every table is read (`readiness_scan_<table>`: a hash
  over all rows), once while the database opens (before the service is ready) and again in
  the background whenever a probe finds the last read older than `DATA_CHECK_INTERVAL_SECONDS`;
  probes report the latest result and never wait for it. DuckDB verifies a block's checksum
  when it reads the block, so a corrupt data block fails here ("cannot read table flights:
  Corrupt database file: ...") instead of only in the API requests that touch it.
- `writes`: the latest write of this process failed less than `WRITE_FAILURE_WINDOW_SECONDS`
  ago (e.g. disk full) and none succeeded since (api/db/database.py, `WRITE_HEALTH`).

Cost (docs/resilience.md): the live read is about a millisecond; the full read of the demo
data about 15 ms once a minute.
"""

from __future__ import annotations

import threading
import time

import duckdb
import structlog
from opentelemetry.instrumentation.utils import suppress_instrumentation

from api.db.database import WRITE_HEALTH, Database, run_query
from api.db.queries import QUERIES

logger = structlog.get_logger(__name__)

# Every table of the schema, in the order the full read visits them (one named query each).
TABLES = tuple(
    name.removeprefix("readiness_scan_") for name in QUERIES if name.startswith("readiness_scan_")
)
DATA_CHECK_INTERVAL_SECONDS = 60.0
# A full read that takes longer is interrupted and reported (far above its normal ~15 ms).
DATA_CHECK_DEADLINE_SECONDS = 30.0
WRITE_FAILURE_WINDOW_SECONDS = 60.0
NOT_CHECKED = "not checked yet"

# How often the live read runs (about a millisecond each: 0.2 % of a core).
HEARTBEAT_SECONDS = 0.5


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_rows(cursor: duckdb.DuckDBPyConnection) -> str:
    """Run the live readiness read on `cursor` (closed afterwards); "ok" or "error: ..."."""
    try:
        with suppress_instrumentation():  # probes leave no traces
            run_query(cursor, "readiness_read_rows")
        return "ok"
    except duckdb.InterruptException:
        return "timeout"
    except Exception as exc:
        return f"error: {_first_line(exc)}"
    finally:
        cursor.close()


class Heartbeat:
    """The live `database` check: a thread reads real rows every `HEARTBEAT_SECONDS`, each
    read interrupted after `timeout_seconds`; probes report the latest outcome at once.

    A probe never waits for the database, so under any load it answers as fast as `/livez`
    (a probe that ran the read itself waited for a thread and for the GIL: 200+ ms at p99
    under 80 heavy requests). It stays honest: when no read finished within
    `timeout_seconds` (+ one beat), the check says "timeout" even while a read still hangs.
    """

    def __init__(self, database: Database, timeout_seconds: float) -> None:
        self.database = database
        self.timeout_seconds = timeout_seconds
        self._latest = NOT_CHECKED
        self._finished_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="readiness-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        """Do the first read now (blocking, at most the timeout), then keep beating."""
        self._read_once()
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the beating thread (shutdown); waits for the read in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout_seconds + HEARTBEAT_SECONDS)

    def result(self) -> str:
        """ "ok", "error: ...", or "timeout after N s" when no read finished in time."""
        finished = self._finished_at
        if finished is None:
            return NOT_CHECKED
        age = time.monotonic() - finished
        if age > self.timeout_seconds + HEARTBEAT_SECONDS or self._latest == "timeout":
            return f"timeout after {self.timeout_seconds:g} s"
        return self._latest

    def _read_once(self) -> None:
        try:
            cursor = self.database.cursor()
        except Exception as exc:
            self._latest, self._finished_at = f"error: {_first_line(exc)}", time.monotonic()
            return
        timer = threading.Timer(self.timeout_seconds, cursor.interrupt)
        timer.daemon = True
        timer.start()
        try:
            outcome = read_rows(cursor)
        finally:
            timer.cancel()
        if outcome != "ok" and outcome != self._latest:
            logger.warning("readiness.read_failed", outcome=outcome)
        self._latest, self._finished_at = outcome, time.monotonic()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._read_once()


def check_writes() -> str:
    """The `writes` check: "ok", or why the latest writes failed (e.g. disk full)."""
    failing = WRITE_HEALTH.failing_since(WRITE_FAILURE_WINDOW_SECONDS)
    return "ok" if failing is None else f"failing: {failing}"


class DataCheck:
    """The full read of every table (the `data` check): its latest result and when it ran.

    `run(database)` reads now (blocking, up to `DATA_CHECK_DEADLINE_SECONDS`); `refresh(...)`
    starts a background read when the last one is older than `interval_seconds` and none is
    running. `result` is "ok", NOT_CHECKED, or "cannot read table <t>: <DuckDB's line>".
    """

    def __init__(self, interval_seconds: float = DATA_CHECK_INTERVAL_SECONDS) -> None:
        self.interval_seconds = interval_seconds
        self.result = NOT_CHECKED
        self.checked_at: float | None = None  # time.monotonic() of the latest finished read
        self._running = False
        self._lock = threading.Lock()

    def run(self, database: Database) -> str:
        """Read every table now; store and return the result."""
        try:
            with database.session() as cursor:
                timer = threading.Timer(DATA_CHECK_DEADLINE_SECONDS, cursor.interrupt)
                timer.daemon = True
                timer.start()
                try:
                    result = self._scan(cursor)
                finally:
                    timer.cancel()
        except Exception as exc:  # e.g. the database closed meanwhile
            result = f"error: {_first_line(exc)}"
        if result != "ok" and result != self.result:
            logger.error("data_check.failed", result=result)
        self.result, self.checked_at = result, time.monotonic()
        return result

    @staticmethod
    def _scan(cursor: duckdb.DuckDBPyConnection) -> str:
        started = time.perf_counter()
        for table in TABLES:
            try:
                with suppress_instrumentation():
                    run_query(cursor, f"readiness_scan_{table}")
            except duckdb.InterruptException:
                return f"timeout: reading every table took over {DATA_CHECK_DEADLINE_SECONDS:g} s"
            except duckdb.Error as exc:
                return f"cannot read table {table}: {_first_line(exc)}"
        logger.debug("data_check.finished", seconds=round(time.perf_counter() - started, 3))
        return "ok"

    def refresh(self, database: Database) -> None:
        """Start a background read when the latest is older than the interval (never waits)."""
        checked_at = self.checked_at
        if checked_at is not None and time.monotonic() - checked_at < self.interval_seconds:
            return
        with self._lock:
            if self._running:
                return
            self._running = True

        def read() -> None:
            try:
                self.run(database)
            finally:
                self._running = False

        threading.Thread(target=read, name="data-check", daemon=True).start()
