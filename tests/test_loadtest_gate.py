"""The load-test gate can fail, and passes a healthy stack.

Unit tests drive loadtests/gate.py with real ``locust.stats.RequestStats`` filled through
``log_request``/``log_error`` and a real Locust ``Environment``; the DuckDB report is fed real
exposition text rendered by prometheus_client. The end-to-end tests run scripts/loadtest.sh,
exactly what ``make loadtest`` runs, against the real production servers: once with thresholds
no server can meet (it must exit non-zero and print the failing checks), once with the real
thresholds (it must pass).
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

# Importing locust monkey-patches the whole process with gevent unless told not to. This
# pytest process also runs the system and browser tests: keep it unpatched (the statistics
# classes need no gevent), and leave no trace in the environment of later subprocesses.
os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
try:
    from locust.env import Environment
    from locust.stats import RequestStats
finally:
    del os.environ["LOCUST_SKIP_MONKEY_PATCH"]

ROOT = Path(__file__).resolve().parent.parent
LOADTESTS = ROOT / "loadtests"
SCRIPT = ROOT / "scripts" / "loadtest.sh"
sys.path.insert(0, str(LOADTESTS))

import duckdb_report  # noqa: E402 - loadtests/ is not a package; the locustfile imports it alike
import gate  # noqa: E402

LENIENT = """
max_fail_ratio = 0.5
min_total_rps = 0
min_requests = 1
default_p95_ms = 60000
"""

IMPOSSIBLE = """
# No server meets these: the gate must fail and say why.
max_fail_ratio = 0.0
min_total_rps = 1e9
min_requests = 1
default_p95_ms = 0.001
[p95_ms]
"GET /flights" = 0.001
"GET /never-requested" = 1000
"""


def write(tmp_path: Path, text: str, name: str = "thresholds.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def filled_stats(
    fast: int = 100, slow: int = 0, failures: int = 0, seconds: float = 10.0
) -> RequestStats:
    """Real Locust stats: `fast` 20 ms and `slow` 900 ms GET /flights, `failures` failed
    GET /flights/[id] (each logged as a request and an error, as Locust does), spread over
    `seconds` of run time."""
    stats = RequestStats()
    for _ in range(fast):
        stats.log_request("GET", "/flights", 20, 1000)
    for _ in range(slow):
        stats.log_request("GET", "/flights", 900, 1000)
    for _ in range(failures):
        stats.log_request("GET", "/flights/[id]", 5, 0)
        stats.log_error("GET", "/flights/[id]", "LocustBadStatusCode(code=500)")
    stats.total.start_time = time.time() - seconds
    stats.total.last_request_timestamp = stats.total.start_time + seconds
    return stats


def thresholds(**overrides: object) -> gate.Thresholds:
    values: dict[str, object] = {
        "max_fail_ratio": 0.01,
        "min_total_rps": 5.0,
        "default_p95_ms": 1000.0,
        "p95_ms": {"GET /flights": 500.0},
    }
    values.update(overrides)
    return gate.Thresholds(**values)  # type: ignore[arg-type]


def failed_names(result: gate.GateResult) -> list[str]:
    return [c.name.split(" (n=")[0] for c in result.failures]


def test_this_process_was_not_monkey_patched() -> None:
    from gevent import monkey

    assert not monkey.is_module_patched("socket")
    assert not monkey.is_module_patched("threading")


# --- evaluation logic on real Locust statistics ------------------------------------------


def test_healthy_run_passes() -> None:
    result = gate.evaluate(filled_stats(fast=100), thresholds())
    assert result.passed, gate.format_table(result)
    assert "GATE PASSED" in gate.format_table(result)


def test_slow_endpoint_fails_on_its_own_p95_limit() -> None:
    # 10 % of requests at 900 ms put the p95 at 900 ms: over 500, under the 1000 default.
    stats = filled_stats(fast=90, slow=10)
    assert stats.get("/flights", "GET").get_response_time_percentile(0.95) == 900
    result = gate.evaluate(stats, thresholds())
    assert failed_names(result) == ["p95 GET /flights"]
    assert gate.evaluate(stats, thresholds(p95_ms={})).passed  # default limit 1000 ms


def test_failure_ratio_over_limit_fails() -> None:
    # 2 failed of 102 requests = 1.96 % > 1 %.
    result = gate.evaluate(filled_stats(fast=100, failures=2), thresholds())
    assert failed_names(result) == ["failure ratio"]
    row = result.failures[0]
    assert row.measured.startswith("0.0196") and "2 failed" in row.measured
    assert gate.evaluate(filled_stats(fast=100, failures=1), thresholds()).passed


def test_low_throughput_fails() -> None:
    # 100 requests over 50 s = 2 req/s < 5 req/s.
    result = gate.evaluate(filled_stats(fast=100, seconds=50), thresholds())
    assert failed_names(result) == ["throughput (req/s)"]


def test_listed_endpoint_without_requests_fails_unless_optional() -> None:
    limits = {"GET /flights": 500.0, "POST /flights/new": 1000.0}
    result = gate.evaluate(filled_stats(), thresholds(p95_ms=limits))
    assert failed_names(result) == ["exercised POST /flights/new"]
    optional = frozenset({"POST /flights/new"})
    assert gate.evaluate(filled_stats(), thresholds(p95_ms=limits, optional=optional)).passed


def test_empty_run_and_locustfile_exceptions_fail() -> None:
    empty = gate.evaluate(RequestStats(), thresholds(p95_ms={}, min_total_rps=0))
    assert failed_names(empty) == ["requests (whole run)", "failure ratio"]
    broken = gate.evaluate(filled_stats(), thresholds(), locustfile_exceptions=3)
    assert failed_names(broken) == ["locustfile exceptions"]


def test_thresholds_file_round_trip_and_validation(tmp_path: Path) -> None:
    real = gate.load_thresholds(LOADTESTS / "thresholds.toml")
    assert 0 < real.max_fail_ratio < 1 and real.min_total_rps > 0
    assert "GET /flights/[id]" in real.p95_ms and real.optional <= set(real.p95_ms)
    with pytest.raises(gate.ThresholdsError, match="max_fail_ratio"):
        gate.load_thresholds(write(tmp_path, "min_total_rps = 1\ndefault_p95_ms = 1\n"))
    with pytest.raises(gate.ThresholdsError, match="not valid TOML"):
        gate.load_thresholds(write(tmp_path, "max_fail_ratio = = 1"))
    with pytest.raises(gate.ThresholdsError, match="finite number"):
        gate.load_thresholds(write(tmp_path, LENIENT.replace("= 0\n", '= "fast"\n', 1)))
    with pytest.raises(gate.ThresholdsError, match="not in"):
        gate.load_thresholds(write(tmp_path, LENIENT + 'optional = ["GET /x"]\n'))


def test_quitting_listener_sets_exit_code_and_prints_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = Environment()
    environment.stats = filled_stats(fast=50, failures=5)
    out = io.StringIO()

    monkeypatch.setenv("LOADTEST_THRESHOLDS", str(write(tmp_path, IMPOSSIBLE)))
    gate.on_quitting(environment, out=out)
    assert environment.process_exit_code == 1
    table = out.getvalue()
    assert "GATE FAILED" in table and "FAIL  failure ratio" in table
    assert "FAIL  exercised GET /never-requested" in table

    # Pass path: exit code 0 even though requests failed (the ratio is the file's call, and
    # without an explicit 0 Locust would exit 1 on any failed request).
    monkeypatch.setenv("LOADTEST_THRESHOLDS", str(write(tmp_path, LENIENT, "lenient.toml")))
    gate.on_quitting(environment, out=out)
    assert environment.process_exit_code == 0
    assert "GATE PASSED" in out.getvalue()

    monkeypatch.setenv("LOADTEST_THRESHOLDS", str(tmp_path / "missing.toml"))
    gate.on_quitting(environment, out=out)
    assert environment.process_exit_code == 1


def test_register_adds_the_listener_to_real_locust_events() -> None:
    environment = Environment()
    gate.register(environment.events)
    assert gate.on_quitting in environment.events.quitting._handlers


# --- DuckDB per-query report ---------------------------------------------------------------


def test_duckdb_report_takes_the_delta_per_query() -> None:
    registry = CollectorRegistry()
    histogram = Histogram(
        "duckdb_query_duration_seconds",
        "DuckDB query time",
        ["query", "outcome"],
        registry=registry,
        buckets=(0.001, 0.01, 0.1, 1.0, 10.0),
    )
    histogram.labels("flights.get", "ok").observe(0.5)  # before the run: must not count
    before = generate_latest(registry).decode()
    for _ in range(19):
        histogram.labels("flights.list", "ok").observe(0.02)
    histogram.labels("flights.list", "error").observe(0.02)
    for _ in range(10):
        histogram.labels("flights.get", "ok").observe(0.002)
    after = generate_latest(registry).decode()

    per_query = duckdb_report.delta(
        duckdb_report.read_histogram(before), duckdb_report.read_histogram(after)
    )
    assert set(per_query) == {"flights.list", "flights.get"}
    assert per_query["flights.list"].count == 20 and per_query["flights.list"].errors == 1
    assert per_query["flights.get"].seconds == pytest.approx(0.02)
    assert duckdb_report.p95_upper_bound(per_query["flights.list"].buckets, 20) == 0.1
    report = duckdb_report.format_report(per_query)
    lines = report.splitlines()
    assert lines[4].split()[0] == "flights.list"  # most DuckDB time first
    assert "TOTAL" in report and "30" in lines[-1]


# --- the locustfile against a server that never answers -----------------------------------


@pytest.fixture
def hung_server() -> Iterator[str]:
    """A TCP server on loopback that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.timeout(120)
def test_a_hung_server_fails_requests_instead_of_hanging_the_run(hung_server: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADTEST_", "LOCUST_"))}
    env.update(FRONTEND_URL=hung_server, BACKEND_URL=hung_server, LOADTEST_NETWORK_TIMEOUT="1")
    locustfile = str(LOADTESTS / "locustfile.py")
    started = time.monotonic()
    result = subprocess.run(
        [
            str(ROOT / ".venv/bin/locust"),
            "-f",
            locustfile,
            "--headless",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "4s",
            "--only-summary",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert time.monotonic() - started < 30, output
    assert result.returncode == 1, output
    assert "timed out" in output  # requests failed on the client timeout...
    assert "FAIL  failure ratio" in output  # ...and the gate counted them
    assert "PASS  locustfile exceptions" in output  # the scenario copes with failed requests


# --- end to end: scripts/loadtest.sh (what `make loadtest` runs) --------------------------


def run_loadtest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "LOADTEST_", "LOCUST_", "PROMETHEUS_"))
    }
    environ.update({"LOADTEST_REPORTS": str(tmp_path / "reports"), **env})
    return subprocess.run(
        [str(SCRIPT)],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.timeout(300)
def test_loadtest_script_fails_against_impossible_thresholds(tmp_path: Path) -> None:
    result = run_loadtest(
        tmp_path,
        LOADTEST_THRESHOLDS=str(write(tmp_path, IMPOSSIBLE)),
        LOADTEST_DURATION="8s",
        LOADTEST_USERS="4",
        LOADTEST_SPAWN_RATE="4",
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "GATE FAILED" in output, output
    assert "FAIL  throughput (req/s)" in output
    assert "FAIL  p95 GET /flights (n=" in output
    assert "FAIL  exercised GET /never-requested" in output
    # The run itself happened against the real stack and wrote its reports.
    assert "PASS  requests (whole run)" in output
    reports = tmp_path / "reports"
    assert (reports / "loadtest.html").stat().st_size > 0
    assert (reports / "loadtest_stats.csv").read_text().count("\n") > 3


@pytest.mark.timeout(300)
def test_loadtest_script_passes_with_the_real_thresholds(tmp_path: Path) -> None:
    result = run_loadtest(tmp_path, LOADTEST_DURATION="15s")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "GATE PASSED" in output
    assert "FAIL " not in output
