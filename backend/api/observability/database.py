"""Telemetry of DuckDB statements (service-specific, backend only; docs/observability.md).

- `query_span(name, statement)`: the CLIENT span of one statement (used by
  `api.db.database.run_query`), named after the named query.
- `duckdb_query_duration_seconds` histogram {query, outcome="ok"|"error"}, trace exemplars;
  `duckdb_query_returned_rows_total` counter {query}: `observe_query`.
- `duckdb_database_size_bytes`, `duckdb_wal_size_bytes` gauges: the database file's and
  `<db>.wal`'s sizes, read at scrape time (0 when absent), for the file set by
  `watch_database`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .tracing import current_trace_exemplar

_tracer = trace.get_tracer("api.db")  # a proxy: follows the global provider once set

# DuckDB statements range from ~100 µs (a point lookup) to seconds (a full scan or a load).
DUCKDB_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
    5, 10,
)  # fmt: skip

DUCKDB_QUERY_DURATION = Histogram(
    "duckdb_query_duration_seconds",
    "Duration of DuckDB statements (execute + fetch), in seconds, by named query.",
    ["query", "outcome"],
    buckets=DUCKDB_BUCKETS,
)
DUCKDB_RETURNED_ROWS = Counter(
    "duckdb_query_returned_rows",  # exposed as duckdb_query_returned_rows_total
    "Rows returned by DuckDB statements, by named query.",
    ["query"],
)


@lru_cache(maxsize=256)
def operation_name(statement: str) -> str:
    """The first SQL keyword upper-cased (SELECT, INSERT, BEGIN, ...): `db.operation.name`.

    Leading `--` comment lines (migration files start with one) are skipped."""
    for line in statement.splitlines():
        words = line.split(maxsplit=1)
        if words and not words[0].startswith("--"):
            return words[0].upper()
    return ""


@contextmanager
def query_span(name: str, statement: str) -> Iterator[Span]:
    """A CLIENT span named after the query (`name`) around one DuckDB statement.

    Sets `db.system.name`, `db.operation.name`, `db.query.summary`; the caller adds
    `db.response.returned_rows`. On an exception the span records it, gets `error.type` (the
    exception's class name) and status ERROR, and the exception propagates. Yields a
    non-recording span when instrumentation is suppressed.
    """
    # The standard switch (`opentelemetry.instrumentation.utils.suppress_instrumentation()`),
    # used by the readiness probe so probes leave no traces.
    if not is_instrumentation_enabled():
        yield trace.INVALID_SPAN
        return
    with _tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes={
            "db.system.name": "duckdb",
            "db.operation.name": operation_name(statement),
            "db.query.summary": name,
        },
        record_exception=False,  # done below, explicitly
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.record_exception(exc)
            # semconv: the class name of the exception (low cardinality) on a failed operation
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


def observe_query(name: str, outcome: str, seconds: float, rows: int = 0) -> None:
    """Record one DuckDB statement: `outcome` is "ok" or "error", `rows` the rows returned.

    Called inside the statement's span, so the exemplar links to that span's trace.
    """
    DUCKDB_QUERY_DURATION.labels(name, outcome).observe(seconds, exemplar=current_trace_exemplar())
    if outcome == "ok":
        DUCKDB_RETURNED_ROWS.labels(name).inc(rows)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class DatabaseFilesCollector(Collector):
    """Sizes of the DuckDB file and its write-ahead log (`<db>.wal`), read at scrape time.

    `path` is the database in use; it is set by the app factory (`watch_database`). Missing
    files count as 0 bytes.
    """

    def __init__(self) -> None:
        self.path: Path | None = None

    def collect(self) -> Iterable[Metric]:
        database = GaugeMetricFamily(
            "duckdb_database_size_bytes", "Size of the DuckDB database file, in bytes."
        )
        wal = GaugeMetricFamily(
            "duckdb_wal_size_bytes", "Size of the DuckDB write-ahead log file, in bytes."
        )
        path = self.path
        database.add_metric([], _file_size(path) if path else 0)
        wal.add_metric([], _file_size(Path(f"{path}.wal")) if path else 0)
        yield database
        yield wal


DATABASE_FILES = DatabaseFilesCollector()
REGISTRY.register(DATABASE_FILES)


def watch_database(path: Path) -> None:
    """Report the sizes of the DuckDB file at `path` (and its WAL) from now on."""
    DATABASE_FILES.path = path
