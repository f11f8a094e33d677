"""Prometheus metrics of the backend (docs/observability.md, "Metrics").

The backend is ONE process, so the metrics live in prometheus-client's default registry (no
multiprocess mode; process and GC metrics come for free). Metric objects are module-level
singletons: registering a name twice raises, and tests build several apps per process.

- `http_server_request_duration_seconds` histogram {http_request_method, http_route,
  http_response_status_code}
- `http_server_active_requests` gauge {http_request_method, http_route}
- `app_build_info` gauge, always 1 {service_name, version, git_commit}
- `duckdb_query_duration_seconds` histogram {query, outcome="ok"|"error"}, trace exemplars
- `duckdb_query_returned_rows_total` counter {query}
- `duckdb_database_size_bytes` gauge: the database file's size, read at scrape time
- `duckdb_wal_size_bytes` gauge: `<db>.wal`'s size at scrape time, 0 when absent

All durations are seconds measured with `time.perf_counter`. Exemplars (`trace_id` of a
sampled span) appear only in the OpenMetrics exposition format.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import disable_created_metrics
from prometheus_client.registry import Collector

from api.observability.tracing import current_trace_exemplar

# `_created` series double the series count and no dashboard here reads them.
disable_created_metrics()

# OpenTelemetry's recommended boundaries for HTTP server durations (seconds).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
# DuckDB statements range from ~100 µs (a point lookup) to seconds (a full scan or a load).
DUCKDB_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
    5, 10,
)  # fmt: skip

HTTP_REQUEST_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP requests handled by the server, in seconds.",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=HTTP_BUCKETS,
)
HTTP_ACTIVE_REQUESTS = Gauge(
    "http_server_active_requests",
    "HTTP requests being handled right now.",
    ["http_request_method", "http_route"],
)
BUILD_INFO = Gauge(
    "app_build_info",
    "Always 1; the labels name the running build.",
    ["service_name", "version", "git_commit"],
)
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


def observe_http_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one finished HTTP request (with a trace exemplar when a sampled span is active)."""
    HTTP_REQUEST_DURATION.labels(method, route, str(status)).observe(
        seconds, exemplar=current_trace_exemplar()
    )


def observe_query(name: str, outcome: str, seconds: float, rows: int = 0) -> None:
    """Record one DuckDB statement: `outcome` is "ok" or "error", `rows` the rows returned.

    Called inside the statement's span, so the exemplar links to that span's trace.
    """
    DUCKDB_QUERY_DURATION.labels(name, outcome).observe(seconds, exemplar=current_trace_exemplar())
    if outcome == "ok":
        DUCKDB_RETURNED_ROWS.labels(name).inc(rows)


def set_build_info(service_name: str, version: str, git_commit: str) -> None:
    """Set `app_build_info{service_name, version, git_commit} 1`."""
    BUILD_INFO.labels(service_name, version, git_commit).set(1)


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


def render(accept_header: str | None) -> tuple[bytes, str]:
    """The registry's samples as `(body, content_type)`.

    OpenMetrics (with exemplars) when `accept_header` asks for
    `application/openmetrics-text`, the classic text format 0.0.4 otherwise.
    """
    encoder, content_type = choose_encoder(accept_header or "")
    return encoder(REGISTRY), content_type
