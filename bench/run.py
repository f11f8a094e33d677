"""`make bench`: telemetry on vs off, side by side, on this machine, in one run.

What it does (docs/performance.md explains the figures):

1. Machine facts (CPU model, cores, RAM, Python, OS) and a throw-away copy of the demo
   database (the template is cached in reports/.cache like scripts/loadtest.sh does).
2. Raw DuckDB: the named queries behind the benchmarked endpoints, in-process with the
   backend's own `Database`/`run_query` (bench/duckdb_raw.py, the backend's interpreter).
3. The stack with its PRODUCTION servers (uvicorn one process, gunicorn WEB_CONCURRENCY=2),
   three times, each over a fresh database copy, all three running for the whole run:
   - telemetry on: OTLP/HTTP export to a receiver running in this process
     (tests/otlp_receiver.py, real protobuf decoding), JSON logs at INFO, metrics;
   - telemetry off: TELEMETRY_ENABLED=false (the one documented setting);
   - peer: the backend alone, our telemetry off, served the way most FastAPI users would
     observe it instead (bench/peer_app.py: zero-code `opentelemetry-instrument` exporting
     OTLP/HTTP to the same receiver, prometheus-fastapi-instrumentator, uvicorn's access
     log), from the bench venv (bench/requirements.txt). Frontend scenarios: no peer run.
   Every scenario (`SCENARIOS`) runs on the three stacks in turn (on, off, peer; the others
   wait idle), BENCH_ROUNDS times (default 3) with a third of the measured window each
   (a scenario with writes: once, the whole window), so
   the figures a ratio compares are measured side by side and a drift of the machine's
   speed falls on all three alike; BENCH_USERS users (default 20), a warm-up before the
   first round (0.5 s before the others), bench/loadgen.py (Locust as a library, own
   process). The rounds of one stack are merged: requests over their summed windows, exact
   percentiles over all their responses.
4. One markdown table (printed, written to reports/bench.md, and into docs/performance.md
   between the `bench:latest` markers; with BENCH_SCALE>1 reports/bench-xN.md and the
   `bench:scale` markers) plus reports/bench.json (bench-xN.json).

BENCH_SCALE=N (`make bench SCALE=N`): the database holds N years of flights
(`load-demo-data --scale N`, 336,776 a year); the template is cached per N.

Environment: BENCH_USERS=20, BENCH_WARMUP=3 (s), BENCH_DURATION=12 (s, split over BENCH_ROUNDS=3),
BENCH_DUCKDB_RUNS=50 (20 at BENCH_SCALE>1), BENCH_PROFILE=<comma list of stacks, e.g. on,off>
(after each scenario's rounds, one more window of BENCH_PROFILE_SECONDS=8 per named stack
with py-spy attached: bench/profiles.py; raw samples in reports/profiles/),
BENCH_MODES=on,off,peer, BENCH_SCENARIOS=<comma list of names>, BENCH_SCALE=1,
BENCH_TIMEOUT=1050 (s, whole run; 2100 with BENCH_SCALE>1), BENCH_WRITE_DOCS=1 (0: leave
docs/performance.md alone), BENCH_LABEL=<text in the report>.
Every child process is stopped on exit, error, Ctrl-C or the hard timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import profiles  # noqa: E402  (bench/)
from otlp_receiver import OTLPReceiver  # noqa: E402
from percentiles import percentile  # noqa: E402  (bench/, this script's directory)

BACKEND = ROOT / "backend"
FRONTEND = ROOT / "frontend"
REPORTS = ROOT / "reports"
DOC = ROOT / "docs" / "performance.md"
PY = ROOT / ".venv" / "bin" / "python"
BENCH_VENV = ROOT / "bench" / ".venv"  # the peer stack's (scripts/bootstrap.sh bench)

USERS = int(os.environ.get("BENCH_USERS", "20"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "3"))
DURATION = float(os.environ.get("BENCH_DURATION", "12"))
# The measured window of a scenario is split into ROUNDS rounds, the stacks taking turns
# round by round, so a drift of the machine's speed falls on every stack alike.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
REWARM = 0.5  # s: the warm-up of every round after the first (the caches are warm by then)
MODES = [m.strip() for m in os.environ.get("BENCH_MODES", "on,off,peer").split(",") if m.strip()]
SCALE = int(os.environ.get("BENCH_SCALE") or "1")
DUCKDB_RUNS = int(os.environ.get("BENCH_DUCKDB_RUNS") or ("50" if SCALE == 1 else "20"))
FLIGHTS_PER_YEAR = 336_776  # ids of year 2013+k are k * 336,776 + 1 .. (k + 1) * 336,776
MAX_ID = FLIGHTS_PER_YEAR * SCALE
HARD_TIMEOUT = int(os.environ.get("BENCH_TIMEOUT") or ("1050" if SCALE == 1 else "2100"))
SUFFIX = "" if SCALE == 1 else f"-x{SCALE}"  # report files of a size run
WRITE_DOCS = os.environ.get("BENCH_WRITE_DOCS", "1") != "0"
PROFILE = [m.strip() for m in os.environ.get("BENCH_PROFILE", "").split(",") if m.strip()]
PROFILE_SECONDS = float(os.environ.get("BENCH_PROFILE_SECONDS", "8"))
PROFILES = REPORTS / "profiles"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
LABEL = os.environ.get("BENCH_LABEL", "")


@dataclass(frozen=True)
class Scenario:
    """One load scenario: where, which path, the raw DuckDB label (bench/duckdb_raw.py) of
    what it runs, and flight creates per second sent beside it (0: reads only).
    `{page21}` in a path is the cursor of that page (found per stack, api/routes/flights.py)."""

    service: str
    path: str
    raw: str | None = None
    writes_per_second: float = 0.0


JFK_UA = "/api/v1/flights?origin=JFK&carrier=UA"
SCENARIOS: dict[str, Scenario] = {
    "ceiling: frontend /readyz": Scenario("frontend", "/readyz"),
    "dashboard /": Scenario("frontend", "/"),
    "dashboard / + 1 write/s": Scenario("frontend", "/", writes_per_second=1.0),
    "dashboard /delays": Scenario("frontend", "/delays"),
    "api stats/carriers": Scenario("backend", "/api/v1/stats/carriers", "stats_carriers"),
    "api stats/daily": Scenario("backend", "/api/v1/stats/daily", "stats_daily"),
    "api stats/hours": Scenario("backend", "/api/v1/stats/hours", "stats_hours"),
    "api stats/destinations": Scenario(
        "backend", "/api/v1/stats/destinations", "stats_destinations"
    ),
    "api stats/weather": Scenario("backend", "/api/v1/stats/weather", "stats_weather"),
    "api flights (first page)": Scenario("backend", "/api/v1/flights", "flight_list (no filter)"),
    "api flights?origin=JFK&carrier=UA": Scenario("backend", JFK_UA, "flight_list"),
    "api flights?origin=JFK&carrier=UA page 21": Scenario(
        "backend", JFK_UA + "&cursor={page21}", "flight_list (page 21)"
    ),
    "api flights/{id}": Scenario("backend", "/api/v1/flights/{id}", "flight_get"),
}
if os.environ.get("BENCH_SCENARIOS"):
    wanted = {s.strip() for s in os.environ["BENCH_SCENARIOS"].split(",")}
    SCENARIOS = {k: v for k, v in SCENARIOS.items() if k in wanted or v.path in wanted}


class CountingReceiver(OTLPReceiver):
    """The test receiver, decoding every export for real but keeping only counts (memory)."""

    def __init__(self) -> None:
        super().__init__()
        self.span_counts: dict[str, int] = {}

    def _store(self, request: Any) -> None:
        with self._lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    ),
                    "?",
                )
                n = sum(len(s.spans) for s in resource_spans.scope_spans)
                self.span_counts[service] = self.span_counts.get(service, 0) + n


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine() -> dict[str, str]:
    cpuinfo = (
        Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    )
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
    os_name = platform.platform()
    release = Path("/etc/os-release")
    if release.exists():
        pretty = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', release.read_text(), re.MULTILINE)
        os_name = f"{pretty.group(1) if pretty else os_name} (kernel {platform.release()})"
    backend_py = subprocess.run(
        [
            str(BACKEND / ".venv/bin/python"),
            "-c",
            "import platform; print(platform.python_version())",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.strip()
    return {
        "cpu": model.group(1).strip() if model else platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "ram": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "unknown",
        "python": backend_py or platform.python_version(),
        "os": os_name,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


LOAD_DEMO = [str(BACKEND / ".venv/bin/python"), "-m", "api", "load-demo-data"]


def template_db() -> Path:
    """The demo database, built once and rebuilt when the backend's code is newer."""
    cache = REPORTS / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    template = cache / f"demo-template{SUFFIX}.db"
    if template.exists():
        newest = max(
            p.stat().st_mtime for p in (BACKEND / "api").rglob("*") if p.suffix in (".py", ".sql")
        )
        if newest <= template.stat().st_mtime:
            return template
    log(f"building the demo database template ({SCALE} year(s) of flights)")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "template.db"
        subprocess.run(
            [*LOAD_DEMO, "--scale", str(SCALE)],
            cwd=BACKEND,
            env={**clean_env(), "DATABASE_PATH": str(target), "LOG_LEVEL": "WARNING"},
            check=True,
            capture_output=True,
            timeout=600,
        )
        shutil.move(str(target), template)
    return template


def clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "PROMETHEUS_", "BENCH_"))
        and k not in ("TELEMETRY_ENABLED", "LOG_LEVEL", "LOG_FORMAT", "WEB_CONCURRENCY")
    }


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


@dataclass
class Stack:
    procs: list[Proc] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.procs):  # frontend first, then the backend (CHECKPOINT)
            proc.stop()
        self.procs.clear()

    def url(self, service: str) -> str | None:
        """The base URL of the stack's `service` ("backend" or "frontend"), None if absent."""
        return next((proc.url for proc in self.procs if proc.name == service), None)


def start(
    name: str, argv: list[str], cwd: Path, env: dict[str, str], port: int, log_path: Path
) -> Proc:
    with log_path.open("wb") as out:
        popen = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    proc = Proc(name, popen, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-30:]
            raise RuntimeError(f"the {name} exited early:\n" + "\n".join(tail))
        try:
            if httpx.get(proc.url + "/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.stop()
    raise RuntimeError(f"the {name} was not ready after 120 s")


# The key both services share (BACKEND_API_KEY); the API scenarios send it (bench/loadgen.py).
API_KEY = secrets.token_urlsafe(32)


def start_stack(mode: str, db: Path, stack: Stack, receiver: CountingReceiver | None) -> None:
    common = {
        **clean_env(),
        "APP_ENV": "production",
        "METRICS_TOKEN": secrets.token_urlsafe(32),
        "BACKEND_API_KEY": API_KEY,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "HOST": "127.0.0.1",
        "TELEMETRY_ENABLED": "true" if mode == "on" else "false",
    }
    if receiver is not None:
        common["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    backend_port, frontend_port = free_port(), free_port()
    backend_env = {**common, "DATABASE_PATH": str(db), "PORT": str(backend_port)}
    argv = [str(BACKEND / ".venv/bin/python"), "-m", "api", "serve"]
    if mode == "peer":
        argv, backend_env = peer_backend(backend_env, backend_port)
    stack.procs.append(
        start(
            "backend",
            argv,
            BACKEND,
            backend_env,
            backend_port,
            REPORTS / f"bench-{mode}{SUFFIX}-backend.log",
        )
    )
    if mode == "peer":
        return  # the peer is a backend stack; the frontend scenarios have no peer run
    stack.procs.append(
        start(
            "frontend",
            [str(FRONTEND / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "web:create_app()"],
            FRONTEND,
            {
                **common,
                "PORT": str(frontend_port),
                "BACKEND_URL": stack.procs[0].url,
                "SECRET_KEY": secrets.token_urlsafe(48),
                "SESSION_COOKIE_SECURE": "false",
                "WEB_CONCURRENCY": "2",
            },
            frontend_port,
            REPORTS / f"bench-{mode}{SUFFIX}-frontend.log",
        )
    )


def peer_backend(env: dict[str, str], port: int) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the peer backend (bench/peer_app.py says what and why).

    Zero-code OpenTelemetry is configured through its documented environment variables
    (https://opentelemetry.io/docs/zero-code/python/configuration/); uvicorn runs from its
    command line with its defaults (access log on) and one process, like ours.
    """
    peer_env = {
        **env,
        "TELEMETRY_ENABLED": "false",  # ours off: only the peer's telemetry runs
        "OTEL_SERVICE_NAME": "flights-backend-peer",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        # the receiver takes traces only; the peer's metrics are Prometheus (instrumentator)
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    argv = [
        str(BENCH_VENV / "bin/opentelemetry-instrument"), str(BENCH_VENV / "bin/uvicorn"),
        "peer_app:create", "--factory", "--app-dir", str(ROOT / "bench"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    return argv, peer_env


def resolve(path: str, backend_url: str) -> str:
    """A scenario's path with `{page21}` replaced by the cursor of page 21 of that listing."""
    if "{page21}" not in path:
        return path
    base = path.split("&cursor=")[0]
    cursor = None
    headers = {"Authorization": f"Bearer {API_KEY}"}
    for _ in range(20):
        query = base + (f"&cursor={cursor}" if cursor else "")
        answer = httpx.get(backend_url + query, headers=headers, timeout=60)
        answer.raise_for_status()
        cursor = answer.json()["next_cursor"]
    return path.replace("{page21}", str(cursor))


def run_scenario(
    url: str, path: str, scenario: Scenario, backend_url: str, warmup: float, duration: float
) -> dict[str, Any]:
    """One loadgen run (its JSON line) plus `times`: every successful response time (ms)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        times_file = Path(out.name)
    argv = [
        str(PY), str(ROOT / "bench" / "loadgen.py"), "--host", url, "--path", path,
        "--users", str(USERS), "--warmup", str(warmup), "--duration", str(duration),
        "--max-id", str(MAX_ID), "--times-out", str(times_file),
    ]  # fmt: skip
    if scenario.writes_per_second:
        argv += ["--writes-per-second", str(scenario.writes_per_second)]
        argv += ["--write-url", backend_url]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=warmup + duration + 60,
            check=False,
            env={**os.environ, "BACKEND_API_KEY": API_KEY},
        )
        if done.returncode != 0:
            raise RuntimeError(f"loadgen failed for {path}:\n{done.stderr[-3000:]}")
        result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
        result["times"] = json.loads(times_file.read_text())
        return result
    finally:
        times_file.unlink(missing_ok=True)


def wait_until_idle(pid: int, limit: float = 30.0) -> None:
    """Wait (at most `limit` s) until process `pid` uses under 10 % of a core over 0.5 s.

    After a round with writes, the stack recomputes its aggregates in the background
    (api/db/cache.py, refresh-behind; seconds of CPU at SCALE=30): that work must not fall
    into the next stack's round."""

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            before = cpu_seconds()
            time.sleep(0.5)
            if cpu_seconds() - before < 0.05:
                return
        except (FileNotFoundError, ProcessLookupError):
            return


def profile_scenario(name: str, scenario: Scenario, stack: Stack, mode: str, path: str) -> Any:
    """One more window of `scenario` on `stack` (not measured) with py-spy attached to the
    service it loads for PROFILE_SECONDS after a 1 s warm-up; the raw samples go to
    reports/profiles/, and the row of `profiles.table` is returned."""
    proc = next(p for p in stack.procs if p.name == scenario.service)
    backend_url = stack.url("backend") or proc.url
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    out = PROFILES / f"{slug}{SUFFIX}-{mode}-{scenario.service}.txt"
    load = threading.Thread(
        target=run_scenario,
        args=(proc.url, path, scenario, backend_url, 1.0, PROFILE_SECONDS + 1.0),
        daemon=True,
    )
    load.start()
    time.sleep(1.0)
    argv = [str(PY_SPY), "record", "--nonblocking", "-r", "100", "-d", f"{PROFILE_SECONDS:g}",
            "-f", "raw", "-o", str(out), "--pid", str(proc.popen.pid)]  # fmt: skip
    if scenario.service == "frontend":
        argv.append("--subprocesses")  # the gunicorn workers
    try:
        subprocess.run(argv, capture_output=True, timeout=PROFILE_SECONDS + 60, check=True)
    except (OSError, subprocess.SubprocessError) as error:  # no py-spy, no ptrace: no row
        log(f"telemetry {mode}: {name}: py-spy failed, no profile: {error!r}")
        out.write_text("")
    load.join(timeout=PROFILE_SECONDS + 60)
    if scenario.writes_per_second:
        wait_until_idle(stack.procs[0].popen.pid)  # as after a measured round with writes
    samples, shares = profiles.summarize(out)
    return (name, mode, scenario.service, samples, shares)


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario's figures from its rounds on one stack: requests, failures, writes and
    seconds summed, rps over the summed windows, exact p50/p95/p99 over every response."""
    times = sorted(t for r in rounds for t in r["times"])
    seconds = sum(r["seconds"] for r in rounds)
    requests = sum(r["requests"] for r in rounds)
    return {
        "path": rounds[0]["path"],
        "users": rounds[0]["users"],
        "rounds": len(rounds),
        "seconds": round(seconds, 3),
        "requests": requests,
        "failures": sum(r["failures"] for r in rounds),
        "rps": round(requests / seconds, 1) if seconds else 0.0,
        "rps_rounds": [r["rps"] for r in rounds],
        "p50_ms": percentile(times, 0.50),
        "p95_ms": percentile(times, 0.95),
        "p99_ms": percentile(times, 0.99),
        "writes": sum(r["writes"] for r in rounds),
        "write_failures": sum(r["write_failures"] for r in rounds),
    }


def busy_processes() -> list[str]:
    """Other load on the machine (pytest, locust runs) that would spoil the figures."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=False)
    mine = {str(os.getpid())}
    return [
        line.strip()
        for line in out.stdout.splitlines()[1:]
        if re.search(r"\b(pytest|locust)\b", line) and line.split()[0] not in mine
    ]


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def rps_ratio(x: dict[str, Any] | None, y: dict[str, Any] | None) -> float | None:
    """x's throughput over y's: the median of the ratios of their rounds taken in turn
    (measured seconds apart, so a drift of the machine's speed cancels); None when one is
    missing or y served nothing."""
    if not x or not y:
        return None
    pairs = [a / b for a, b in zip(x["rps_rounds"], y["rps_rounds"], strict=True) if b]
    return statistics.median(pairs) if pairs else None


def table(results: dict[str, dict[str, dict[str, Any]]], raw: dict[str, Any]) -> str:
    modes = [m for m in ("on", "off", "peer") if m in results]
    head = ["scenario"]
    for mode in modes:
        head += [f"rps ({mode})", f"p50 ms ({mode})", f"p95 ms ({mode})", f"fail ({mode})"]
    if {"on", "off"} <= set(modes):
        head.append("rps on/off")
    if {"on", "peer"} <= set(modes):
        head.append("rps ours/peer")
    head.append("raw DuckDB p50/p95 ms")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, scenario in SCENARIOS.items():
        row = [name]
        for mode in modes:
            r = results[mode].get(name)
            row += (
                [fmt(r["rps"]), fmt(r["p50_ms"], 2), fmt(r["p95_ms"], 2), str(r["failures"])]
                if r
                else ["—"] * 4
            )
        for a, b in (("on", "off"), ("on", "peer")):
            if {a, b} <= set(modes):
                ratio = rps_ratio(results[a].get(name), results[b].get(name))
                row.append("—" if ratio is None else f"{ratio:.0%}")
        q = raw.get(scenario.raw) if scenario.raw else None
        row.append(f"{q['p50_ms']:.2f} / {q['p95_ms']:.2f}" if q else "—")
        lines.append("| " + " | ".join(row) + " |")
    notes = []
    for mode in modes:
        ceiling = results[mode].get("ceiling: frontend /readyz")
        dash = results[mode].get("dashboard /")
        if ceiling and dash and ceiling["rps"]:
            notes.append(
                f"- dashboard vs ceiling (telemetry {mode}): {dash['rps'] / ceiling['rps']:.0%} "
                f"of the ceiling's throughput; dashboard p95 {fmt(dash['p95_ms'], 1)} ms"
            )
        for name, scenario in SCENARIOS.items():
            r = results[mode].get(name)
            if scenario.writes_per_second and r:
                notes.append(
                    f"- {name} (telemetry {mode}): {r.get('writes', 0)} flights created "
                    f"({r.get('write_failures', 0)} failed) during warm-up + window; "
                    f"p95 {fmt(r['p95_ms'], 1)} ms"
                )
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")


def raw_table(raw: dict[str, Any]) -> str:
    """DuckDB time per named query (in-process, one thread: bench/duckdb_raw.py)."""
    lines = [
        "| raw DuckDB (label) | named query | rows | p50 ms | p95 ms |",
        "|---|---|---|---|---|",
    ]
    for label, q in raw.items():
        lines.append(
            f"| {label} | `{q.get('query', label)}` | {q['rows']} | "
            f"{q['p50_ms']:.2f} | {q['p95_ms']:.2f} |"
        )
    return "\n".join(lines)


# The targets at SCALE>1 (docs/performance.md): p95 at the size run over p95 of the
# last SCALE=1 run (reports/bench.json), telemetry on.
SIZE_TARGETS = (
    ("api flights (first page)", 2.0),
    ("api flights?origin=JFK&carrier=UA", 2.0),
    ("api flights?origin=JFK&carrier=UA page 21", 2.0),
    ("api flights/{id}", 1.5),
)


def size_targets(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Met/missed lines for the size targets, against the last SCALE=1 run when there is one."""
    base_path = REPORTS / "bench.json"
    on = results.get("on", {})
    lines = []
    base: dict[str, Any] = {}
    if base_path.exists():
        base_run = json.loads(base_path.read_text())
        base = base_run.get("results", {}).get("on", {})
        lines.append(
            f"Targets at {MAX_ID:,} flights, telemetry on, against the SCALE=1 run of "
            f"{base_run.get('machine', {}).get('date', '?')} (336,776 flights; separate runs "
            "on a shared machine):"
        )
    for name, limit in SIZE_TARGETS:
        now, then = on.get(name), base.get(name)
        if now and then and then.get("p95_ms") and now.get("p95_ms") is not None:
            ratio = now["p95_ms"] / then["p95_ms"]
            verdict = "met" if ratio <= limit and not now["failures"] else "MISSED"
            lines.append(
                f"- {name}: p95 {fmt(now['p95_ms'], 2)} ms vs {fmt(then['p95_ms'], 2)} ms = "
                f"{ratio:.2f}x (target <= {limit:g}x), {now['failures']} failures: {verdict}"
            )
    dash = on.get("dashboard / + 1 write/s")
    if dash:
        # p95 is over the successful responses: failures miss the target by themselves.
        ok = dash["p95_ms"] is not None and dash["p95_ms"] < 150 and not dash["failures"]
        lines.append(
            f"- dashboard / + 1 write/s: p95 {fmt(dash['p95_ms'], 1)} ms of the successful "
            f"responses, {dash['failures']} of {dash['requests']} requests failed "
            f"(target < 150 ms): {'met' if ok else 'MISSED'}"
        )
    return "\n".join(lines)


def render_report(
    info: dict[str, str], body: str, spans: dict[str, int], raw: dict[str, Any], extra: str
) -> str:
    head = (
        f"Run {info['date']}{' — ' + LABEL if LABEL else ''}: {USERS} users, "
        f"{WARMUP:g} s warm-up + {DURATION:g} s measured per scenario in {ROUNDS} rounds, the "
        f"stacks taking turns ({REWARM:g} s warm-up before each later round), no think time; "
        f"{MAX_ID:,} flights ({SCALE} year{'s' if SCALE > 1 else ''}).\n"
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, "
        f"Python {info['python']}, {info['os']}.\n"
    )
    if spans:
        head += (
            "Spans received by the OTLP receiver (on and peer): "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(spans.items()))
            + ".\n"
        )
    out = head + "\n" + body + "\n\n" + raw_table(raw) + "\n"
    return out + ("\n" + extra + "\n" if extra else "")


def write_doc(report: str) -> None:
    marker = "latest" if SCALE == 1 else "scale"
    start, end = f"<!-- bench:{marker}:start -->", f"<!-- bench:{marker}:end -->"
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if start not in text or end not in text:
        title = "Latest `make bench` run" if SCALE == 1 else "Latest `make bench SCALE=N` run"
        text += f"\n## {title}\n\n{start}\n{end}\n"
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    DOC.write_text(f"{before}{start}\n{report}{end}{after}")


def main() -> int:
    REPORTS.mkdir(exist_ok=True)
    busy = busy_processes()
    if busy:
        log(
            "WARNING: other load on this machine, figures will be disturbed:\n  "
            + "\n  ".join(busy)
        )
    info = machine()
    template = template_db()
    work = Path(tempfile.mkdtemp(prefix="bench.", dir=os.environ.get("TMPDIR")))
    stacks: dict[str, Stack] = {}
    receiver: CountingReceiver | None = None
    results: dict[str, dict[str, dict[str, Any]]] = {}
    spans: dict[str, int] = {}
    profiled: list[Any] = []
    if PROFILE:
        PROFILES.mkdir(parents=True, exist_ok=True)
    try:
        raw_db = work / "raw.db"
        shutil.copyfile(template, raw_db)
        log(f"raw DuckDB: {DUCKDB_RUNS} runs per query")
        done = subprocess.run(
            [str(BACKEND / ".venv/bin/python"), str(ROOT / "bench/duckdb_raw.py"),
             "--db", str(raw_db), "--n", str(DUCKDB_RUNS), "--max-id", str(MAX_ID)],
            cwd=BACKEND, capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
        raw = json.loads(done.stdout.strip().splitlines()[-1])
        raw_db.unlink()
        # One receiver for ours (on) and the peer: the same OTLP/HTTP endpoint for both.
        receiver = CountingReceiver().start()
        # Every stack runs from the start; the scenarios below take them in turn.
        for mode in MODES:
            db = work / f"{mode}.db"
            shutil.copyfile(template, db)
            log(f"telemetry {mode}: starting the stack")
            stacks[mode] = Stack()
            start_stack(mode, db, stacks[mode], receiver if mode in ("on", "peer") else None)
            frontend_url = stacks[mode].url("frontend")
            if frontend_url:
                for path in ("/", "/?origin=JFK&month=7", "/delays", "/flights", "/flights/1"):
                    httpx.get(frontend_url + path, timeout=60)
            results[mode] = {}
        for name, scenario in SCENARIOS.items():
            rounds: dict[str, list[dict[str, Any]]] = {}
            paths: dict[str, str] = {}
            # A scenario with writes runs in one round of the whole window: its background
            # recomputation (at most once per STATS_REFRESH_SECONDS, seconds of CPU at
            # SCALE=30) would otherwise fall into every short round, far more often than the
            # writes make it happen.
            turns = 1 if scenario.writes_per_second else ROUNDS
            for turn in range(turns):
                for mode in MODES:
                    backend_url = stacks[mode].url("backend")
                    url = stacks[mode].url(scenario.service)
                    if url is None or backend_url is None:
                        continue  # the peer has no frontend
                    if mode not in paths:
                        paths[mode] = resolve(scenario.path, backend_url)
                    rounds.setdefault(mode, []).append(
                        run_scenario(
                            url,
                            paths[mode],
                            scenario,
                            backend_url,
                            WARMUP if turn == 0 else REWARM,
                            DURATION / turns,
                        )
                    )
                    if scenario.writes_per_second:
                        wait_until_idle(stacks[mode].procs[0].popen.pid)
            for mode in PROFILE:
                if mode in paths:
                    row = profile_scenario(name, scenario, stacks[mode], mode, paths[mode])
                    profiled.append(row)
            for mode, measured in rounds.items():
                results[mode][name] = r = merge_rounds(measured)
                log(
                    f"telemetry {mode}: {name}: {r['rps']:.1f} rps "
                    f"(rounds {' / '.join(f'{x:.0f}' for x in r['rps_rounds'])}), "
                    f"p50 {fmt(r['p50_ms'], 2)} ms, p95 {fmt(r['p95_ms'], 2)} ms, "
                    f"{r['failures']} failures"
                )
        time.sleep(0.5)
        spans = dict(receiver.span_counts)
    finally:
        for mode, stack in stacks.items():
            try:
                stack.stop()
            except Exception as error:  # the other stacks must still be stopped
                log(f"telemetry {mode}: stopping the stack failed: {error!r}")
        if receiver is not None:
            receiver.stop()
        shutil.rmtree(work, ignore_errors=True)
    extra = size_targets(results) if SCALE > 1 else ""
    if profiled:
        extra += (
            f"\nWhere the time goes (py-spy, {PROFILE_SECONDS:g} s per row after the rounds, "
            "share of active samples, bench/profiles.py):\n\n" + profiles.table(profiled)
        )
    report = render_report(info, table(results, raw), spans, raw, extra.strip())
    print(report)
    (REPORTS / f"bench{SUFFIX}.md").write_text(report)
    (REPORTS / f"bench{SUFFIX}.json").write_text(
        json.dumps(
            {
                "machine": info,
                "label": LABEL,
                "scale": SCALE,
                "flights": MAX_ID,
                "raw_duckdb": raw,
                "results": results,
                "spans": spans,
                "users": USERS,
                "warmup_s": WARMUP,
                "duration_s": DURATION,
                "rounds": ROUNDS,
            },
            indent=2,
        )
    )
    if WRITE_DOCS:
        write_doc(report)
        log(f"figures written to {DOC.relative_to(ROOT)}")
    log(f"reports: {REPORTS}/bench{SUFFIX}.md, bench{SUFFIX}.json, bench-*-*.log")
    return 0


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError(f"bench did not finish within {HARD_TIMEOUT} s (BENCH_TIMEOUT)")


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, _timeout)
    signal.signal(signal.SIGTERM, _terminate)
    signal.alarm(HARD_TIMEOUT)
    sys.exit(main())
