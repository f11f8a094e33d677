"""Soak test (what `make soak` runs): mixed load for a long time; memory and metric files flat.

Starts the stack with its production servers on free loopback ports over a throw-away copy of
the demo database, runs the Locust suite of loadtests/locustfile.py (its BrowserUser and
ApiUser: dashboard, search, paging, details, creates and edits through the forms, API reads)
headless for SOAK_DURATION, and samples, every SOAK_INTERVAL:

- the resident memory (VmRSS) of every process: the backend, the gunicorn master and each
  gunicorn worker (by pid: a replaced worker shows as a new column);
- the number of files in the frontend's Prometheus multiprocess directory (one set per
  worker pid: it grows when workers are replaced, and never shrinks by itself).

It prints the series as a table and judges it flat: after the warm-up (the first third), the
median memory of every process in the last third is within SOAK_RSS_GROWTH_MB (default
10 MiB) of its median in the second third, no worker was replaced, the file count did not
change, and fewer than 1 % of the requests failed. Exit 0 when flat, 1 otherwise (2 for a
set-up failure).

Environment: SOAK_DURATION (seconds or Locust syntax like 10m, 90s; default 10m),
SOAK_USERS (20), SOAK_INTERVAL (seconds; default duration / 20, at least 3),
SOAK_RSS_GROWTH_MB (10), SOAK_REPORTS (reports/). Not part of `make test`; `.ci/run` runs a
one-minute version.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "backend"
FRONTEND = ROOT / "frontend"


def seconds_of(text: str) -> int:
    """'600', '600s', '10m', '1m30s' -> seconds."""
    match = re.fullmatch(r"\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s?)?\s*", text)
    if not text.strip() or match is None:
        raise SystemExit(f"soak: SOAK_DURATION={text!r} is not like 600, 10m or 1m30s")
    hours, minutes, secs = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + secs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float | None:
    """Resident memory of `pid` in MiB (VmRSS), None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """Direct children of `pid` (the gunicorn workers of the master)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(p) for p in task.read_text().split())
        except OSError:
            continue
    return sorted(set(found))


def wait_ready(name: str, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"soak: the {name} exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"soak: the {name} was not ready after 120 s")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def failure_ratio(stats_csv: Path) -> tuple[int, int]:
    """(requests, failures) of the Aggregated row of Locust's *_stats.csv."""
    lines = stats_csv.read_text().splitlines()
    header = lines[0].split(",")
    for line in lines[1:]:
        cells = line.split(",")
        if cells[header.index("Name")] == "Aggregated":
            requests = int(cells[header.index("Request Count")])
            return requests, int(cells[header.index("Failure Count")])
    return 0, 0


def main() -> int:
    duration = seconds_of(os.environ.get("SOAK_DURATION", "10m"))
    users = int(os.environ.get("SOAK_USERS", "20"))
    interval = float(os.environ.get("SOAK_INTERVAL") or max(3.0, duration / 20))
    growth_limit = float(os.environ.get("SOAK_RSS_GROWTH_MB", "10"))
    reports = Path(os.environ.get("SOAK_REPORTS", ROOT / "reports"))
    reports.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    prom_dir = work / "prometheus"
    prom_dir.mkdir()
    token = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_"))} | {
        "APP_ENV": "production",
        "LOG_LEVEL": "WARNING",
        "METRICS_TOKEN": token,
        # The backend refuses to start in production without it; the frontend and Locust's
        # ApiUser send it.
        "BACKEND_API_KEY": secrets.token_urlsafe(32),
        # No new backend takes over at the end: no rolling-deploy drain (api/settings.py).
        "SHUTDOWN_DRAIN_SECONDS": "0",
    }
    backend = frontend = locust = None
    try:
        database = work / "app.db"
        loaded = subprocess.run(
            [str(BACKEND / ".venv/bin/python"), "-m", "api", "load-demo-data"],
            cwd=BACKEND,
            env=env | {"DATABASE_PATH": str(database)},
            capture_output=True,
            timeout=600,
            check=False,
        )
        if loaded.returncode != 0:
            print(loaded.stdout.decode()[-3000:], file=sys.stderr)
            return 2
        backend_port, frontend_port = free_port(), free_port()
        backend_url = f"http://127.0.0.1:{backend_port}"
        frontend_url = f"http://127.0.0.1:{frontend_port}"
        backend_log, frontend_log = reports / "soak-backend.log", reports / "soak-frontend.log"
        backend = subprocess.Popen(
            [str(BACKEND / ".venv/bin/python"), "-m", "api", "serve"],
            cwd=BACKEND,
            env=env | {"DATABASE_PATH": str(database), "PORT": str(backend_port)},
            stdout=backend_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_ready("backend", backend, backend_url, backend_log)
        frontend = subprocess.Popen(
            [str(FRONTEND / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "web:create_app()"],
            cwd=FRONTEND,
            env=env
            | {
                "BACKEND_URL": backend_url,
                "PORT": str(frontend_port),
                "WEB_CONCURRENCY": "2",
                "SECRET_KEY": secrets.token_urlsafe(48),
                "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
            },
            stdout=frontend_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_ready("frontend", frontend, frontend_url, frontend_log)

        print(
            f"soak: {users} Locust users (BrowserUser, ApiUser of loadtests/locustfile.py) for "
            f"{duration} s against {frontend_url} and {backend_url}; a sample every "
            f"{interval:g} s",
            flush=True,
        )
        locust = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/locust"),
                "-f",
                str(ROOT / "loadtests/locustfile.py"),
                "BrowserUser",
                "ApiUser",
                "--headless",
                "-u",
                str(users),
                "-r",
                str(max(1, users // 2)),
                "-t",
                f"{duration}s",
                "--csv",
                str(reports / "soak"),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=env | {"FRONTEND_URL": frontend_url, "BACKEND_URL": backend_url},
            stdout=(reports / "soak-locust.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        samples: list[tuple[float, dict[str, float | None], int]] = []
        started = time.monotonic()
        deadline = started + duration + 120
        while locust.poll() is None and time.monotonic() < deadline:
            pids = {"backend": backend.pid, "gunicorn master": frontend.pid}
            pids |= {f"worker {pid}": pid for pid in children(frontend.pid)}
            memory = {name: rss_mib(pid) for name, pid in pids.items()}
            files = sum(1 for _ in prom_dir.iterdir())
            samples.append((time.monotonic() - started, memory, files))
            time.sleep(interval)
        if locust.poll() is None:
            locust.kill()
            print("soak: Locust did not end in time", file=sys.stderr)
            return 1
        return judge(samples, growth_limit, reports / "soak_stats.csv")
    finally:
        stop(locust)
        stop(frontend)
        stop(backend)
        shutil.rmtree(work, ignore_errors=True)


def judge(
    samples: list[tuple[float, dict[str, float | None], int]],
    growth_limit: float,
    stats_csv: Path,
) -> int:
    """Print the series and the verdict; 0 when flat, 1 otherwise."""
    names = sorted({name for _, memory, _ in samples for name in memory})
    print("\nseconds  " + "  ".join(f"{n:>15}" for n in names) + "   metric files")
    for at, memory, files in samples:
        cells = "  ".join(
            f"{memory[n]:>11.1f} MiB" if memory.get(n) is not None else f"{'-':>15}" for n in names
        )
        print(f"{at:7.0f}  {cells}   {files:>12}")
    problems: list[str] = []
    if len(samples) < 9:
        problems.append(f"only {len(samples)} samples")
    # Thirds: the first is the warm-up (DuckDB reads the file in, caches fill); medians, since
    # the resident memory of a busy process moves by several MiB from sample to sample.
    third = max(1, len(samples) // 3)
    early, late = samples[third : 2 * third], samples[-third:]
    for name in names:
        before = [m[name] for _, m, _ in early if m.get(name) is not None]
        after = [m[name] for _, m, _ in late if m.get(name) is not None]
        if not before or not after:
            problems.append(f"{name} did not live through the soak (a replaced worker?)")
            continue
        growth = statistics.median(after) - statistics.median(before)
        verdict = "flat" if growth <= growth_limit else "GROWING"
        print(f"{name}: {growth:+.1f} MiB, median of the last third vs the second ({verdict})")
        if growth > growth_limit:
            problems.append(f"{name} grew {growth:.1f} MiB (limit {growth_limit:g})")
    counts = [files for _, _, files in samples[third:]]
    print(f"metric files: {min(counts)}..{max(counts)} after the warm-up")
    if max(counts) != min(counts):
        problems.append(f"the metric files went from {min(counts)} to {max(counts)}")
    requests, failures = failure_ratio(stats_csv)
    print(f"requests: {requests}, failures: {failures}")
    if requests == 0 or failures > 0.01 * requests:
        problems.append(f"{failures} of {requests} requests failed")
    if problems:
        print("soak: NOT FLAT: " + "; ".join(problems))
        return 1
    print("soak: flat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
