"""`make bench`: telemetry on vs off, side by side, on this machine, in one run.

What it does (docs/performance.md explains the figures):

1. Machine facts (CPU model, cores, RAM, Python, OS) and a throw-away copy of the demo
   database (the template is cached in reports/.cache like scripts/loadtest.sh does).
2. Raw DuckDB: the named queries behind the benchmarked endpoints, in-process with the
   backend's own `Database`/`run_query` (bench/duckdb_raw.py, the backend's interpreter).
3. The stack with its PRODUCTION servers (uvicorn one process, gunicorn WEB_CONCURRENCY=2),
   twice over a fresh database copy each time:
   - telemetry on: OTLP/HTTP export to a receiver running in this process
     (tests/otlp_receiver.py, real protobuf decoding), JSON logs at INFO, metrics;
   - telemetry off: TELEMETRY_ENABLED=false (the one documented setting).
   For each, every scenario (`SCENARIOS`) runs with BENCH_USERS users (default 20) for a
   warm-up and a measured window (bench/loadgen.py, Locust as a library, own process).
4. One markdown table (printed, written to reports/bench.md, and into docs/performance.md
   between the `bench:latest` markers) plus reports/bench.json.

Environment: BENCH_USERS=20, BENCH_WARMUP=3 (s), BENCH_DURATION=15 (s), BENCH_DUCKDB_RUNS=50,
BENCH_MODES=on,off, BENCH_SCENARIOS=<comma list of names>, BENCH_TIMEOUT=900 (s, whole run),
BENCH_WRITE_DOCS=1 (0: leave docs/performance.md alone), BENCH_LABEL=<text in the report>.
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
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from otlp_receiver import OTLPReceiver  # noqa: E402

BACKEND = ROOT / "backend"
FRONTEND = ROOT / "frontend"
REPORTS = ROOT / "reports"
DOC = ROOT / "docs" / "performance.md"
PY = ROOT / ".venv" / "bin" / "python"

USERS = int(os.environ.get("BENCH_USERS", "20"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "3"))
DURATION = float(os.environ.get("BENCH_DURATION", "15"))
DUCKDB_RUNS = int(os.environ.get("BENCH_DUCKDB_RUNS", "50"))
MODES = [m.strip() for m in os.environ.get("BENCH_MODES", "on,off").split(",") if m.strip()]
HARD_TIMEOUT = int(os.environ.get("BENCH_TIMEOUT", "900"))
WRITE_DOCS = os.environ.get("BENCH_WRITE_DOCS", "1") != "0"
LABEL = os.environ.get("BENCH_LABEL", "")

# name -> (service, path, the raw DuckDB query it runs or None)
SCENARIOS: dict[str, tuple[str, str, str | None]] = {
    "ceiling: frontend /readyz": ("frontend", "/readyz", None),
    "dashboard /": ("frontend", "/", None),
    "dashboard /delays": ("frontend", "/delays", None),
    "api stats/carriers": ("backend", "/api/v1/stats/carriers", "stats_carriers"),
    "api stats/daily": ("backend", "/api/v1/stats/daily", "stats_daily"),
    "api stats/hours": ("backend", "/api/v1/stats/hours", "stats_hours"),
    "api stats/destinations": ("backend", "/api/v1/stats/destinations", "stats_destinations"),
    "api stats/weather": ("backend", "/api/v1/stats/weather", "stats_weather"),
    "api flights?origin=JFK&carrier=UA": (
        "backend",
        "/api/v1/flights?origin=JFK&carrier=UA",
        "flight_list",
    ),
    "api flights/{id}": ("backend", "/api/v1/flights/{id}", "flight_get"),
}
if os.environ.get("BENCH_SCENARIOS"):
    wanted = {s.strip() for s in os.environ["BENCH_SCENARIOS"].split(",")}
    SCENARIOS = {k: v for k, v in SCENARIOS.items() if k in wanted or v[1] in wanted}


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


def template_db() -> Path:
    """The demo database, built once and rebuilt when the backend's code is newer."""
    cache = REPORTS / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    template = cache / "demo-template.db"
    if template.exists():
        newest = max(
            p.stat().st_mtime for p in (BACKEND / "api").rglob("*") if p.suffix in (".py", ".sql")
        )
        if newest <= template.stat().st_mtime:
            return template
    log("building the demo database template")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "template.db"
        subprocess.run(
            [str(BACKEND / ".venv/bin/python"), "-m", "api", "load-demo-data"],
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
    stack.procs.append(
        start(
            "backend",
            [str(BACKEND / ".venv/bin/python"), "-m", "api", "serve"],
            BACKEND,
            {**common, "DATABASE_PATH": str(db), "PORT": str(backend_port)},
            backend_port,
            REPORTS / f"bench-{mode}-backend.log",
        )
    )
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
            REPORTS / f"bench-{mode}-frontend.log",
        )
    )


def run_scenario(url: str, path: str) -> dict[str, Any]:
    argv = [
        str(PY), str(ROOT / "bench" / "loadgen.py"), "--host", url, "--path", path,
        "--users", str(USERS), "--warmup", str(WARMUP), "--duration", str(DURATION),
    ]  # fmt: skip
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=WARMUP + DURATION + 60,
        check=False,
        env={**os.environ, "BACKEND_API_KEY": API_KEY},
    )
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed for {path}:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


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


def table(results: dict[str, dict[str, dict[str, Any]]], raw: dict[str, Any]) -> str:
    modes = [m for m in ("on", "off") if m in results]
    head = ["scenario"]
    for mode in modes:
        head += [f"rps ({mode})", f"p50 ms ({mode})", f"p95 ms ({mode})", f"fail ({mode})"]
    if modes == ["on", "off"]:
        head.append("rps on/off")
    head.append("raw DuckDB p50/p95 ms")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, (_, _, query) in SCENARIOS.items():
        row = [name]
        for mode in modes:
            r = results[mode].get(name)
            row += (
                [fmt(r["rps"]), fmt(r["p50_ms"], 2), fmt(r["p95_ms"], 2), str(r["failures"])]
                if r
                else ["—"] * 4
            )
        if modes == ["on", "off"]:
            on, off = results["on"].get(name), results["off"].get(name)
            row.append(f"{on['rps'] / off['rps']:.0%}" if on and off and off["rps"] else "—")
        q = raw.get(query) if query else None
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
        carriers = results[mode].get("api stats/carriers")
        if carriers and raw.get("stats_carriers") and carriers["p50_ms"] is not None:
            ratio = carriers["p50_ms"] / raw["stats_carriers"]["p50_ms"]
            notes.append(
                f"- stats/carriers p50 vs raw DuckDB (telemetry {mode}): "
                f"{fmt(carriers['p50_ms'], 2)} ms / {raw['stats_carriers']['p50_ms']:.2f} ms "
                f"= {ratio:.2f}x"
            )
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")


def render_report(info: dict[str, str], body: str, spans: dict[str, int]) -> str:
    head = (
        f"Run {info['date']}{' — ' + LABEL if LABEL else ''}: {USERS} users, "
        f"{WARMUP:g} s warm-up + {DURATION:g} s measured per scenario, no think time.\n"
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, "
        f"Python {info['python']}, {info['os']}.\n"
    )
    if spans:
        head += (
            "Spans received by the OTLP receiver (telemetry on): "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(spans.items()))
            + ".\n"
        )
    return head + "\n" + body + "\n"


def write_doc(report: str) -> None:
    start, end = "<!-- bench:latest:start -->", "<!-- bench:latest:end -->"
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{start}\n{end}\n"
    if start not in text or end not in text:
        text += f"\n## Latest `make bench` run\n\n{start}\n{end}\n"
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
    stack = Stack()
    receiver: CountingReceiver | None = None
    results: dict[str, dict[str, dict[str, Any]]] = {}
    spans: dict[str, int] = {}
    try:
        raw_db = work / "raw.db"
        shutil.copyfile(template, raw_db)
        log(f"raw DuckDB: {DUCKDB_RUNS} runs per query")
        done = subprocess.run(
            [str(BACKEND / ".venv/bin/python"), str(ROOT / "bench/duckdb_raw.py"),
             "--db", str(raw_db), "--n", str(DUCKDB_RUNS)],
            cwd=BACKEND, capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        raw = json.loads(done.stdout.strip().splitlines()[-1])
        for mode in MODES:
            db = work / f"{mode}.db"
            shutil.copyfile(template, db)
            if mode == "on":
                receiver = CountingReceiver().start()
            log(f"telemetry {mode}: starting the stack")
            start_stack(mode, db, stack, receiver)
            backend_url, frontend_url = stack.procs[0].url, stack.procs[1].url
            for path in ("/", "/?origin=JFK&month=7", "/delays", "/flights", "/flights/1"):
                httpx.get(frontend_url + path, timeout=30)
            results[mode] = {}
            for name, (service, path, _) in SCENARIOS.items():
                url = frontend_url if service == "frontend" else backend_url
                results[mode][name] = r = run_scenario(url, path)
                log(
                    f"telemetry {mode}: {name}: {r['rps']:.1f} rps, p50 {fmt(r['p50_ms'], 2)} ms, "
                    f"p95 {fmt(r['p95_ms'], 2)} ms, {r['failures']} failures"
                )
            stack.stop()
            if receiver is not None:
                time.sleep(0.5)
                spans = dict(receiver.span_counts)
                receiver.stop()
                receiver = None
    finally:
        stack.stop()
        if receiver is not None:
            receiver.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = render_report(info, table(results, raw), spans)
    print(report)
    (REPORTS / "bench.md").write_text(report)
    (REPORTS / "bench.json").write_text(
        json.dumps(
            {
                "machine": info,
                "label": LABEL,
                "raw_duckdb": raw,
                "results": results,
                "spans": spans,
                "users": USERS,
                "warmup_s": WARMUP,
                "duration_s": DURATION,
            },
            indent=2,
        )
    )
    if WRITE_DOCS:
        write_doc(report)
        log(f"figures written to {DOC.relative_to(ROOT)} (bench:latest section)")
    log(f"reports: {REPORTS}/bench.md, bench.json, bench-*-{{backend,frontend}}.log")
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
