"""A stalled backend (SIGSTOP) with the real frontend under 50 concurrent page requests
(issue 10, finding 1). The figures are printed beside the issue's targets (pages 503 within
1.5 s p95, `/livez` within 100 ms p99): on a quiet machine they are met (docs/resilience.md).
What is asserted are bounds a busy CI machine cannot trip and the old behaviour could not
meet (pages took a median of 20 s, `/livez` up to 30.6 s): speed targets are for benchmarks,
not for timed tests (loadtests/README.md).

- pages answer 503 within a few seconds: each page waits at most one read budget (0.8 s),
  and once a worker's circuit breaker is open, not at all;
- `/livez` answers within a second all along: probes have their own threads (the probe
  lane of web/worker.py) instead of queueing behind pages that wait on the backend;
- after SIGCONT normal service resumes by itself within a few seconds (the breaker's trial
  call closes it), and the backend is sent few requests meanwhile (it used to be sent, and
  later serve, every page's request whose caller had long given up).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import Stack, backend_service, copy_db, frontend_service
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.timeout(180)

PAGE_P95_TARGET_S, PAGE_P95_LIMIT_S = 1.5, 4.0  # the target; the asserted bound
LIVEZ_P99_TARGET_S, LIVEZ_P99_LIMIT_S = 0.1, 1.0
RECOVERY_LIMIT_S = 10.0


# Polls /livez every 20 ms until SIGTERM, then prints the latencies (seconds) as JSON.
LIVEZ_POLLER = """
import http.client, json, signal, sys, time
host, port = sys.argv[1].split(":")
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
latencies = []
connection = http.client.HTTPConnection(host, int(port), timeout=30)
while not stop:
    started = time.perf_counter()
    connection.request("GET", "/livez")
    response = connection.getresponse()
    response.read()
    assert response.status == 200, response.status
    latencies.append(time.perf_counter() - started)
    time.sleep(0.02)
print(json.dumps(latencies))
"""


def backend_requests(url: str) -> float:
    """Requests the backend has answered so far (all routes), from its /metrics."""
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "http_server_request_duration_seconds"
        for sample in family.samples
        if sample.name.endswith("_count")
    )


def warm_every_worker(url: str, log_path: Path, workers: int) -> None:
    """Serve pages until each of the frontend's `workers` has answered one (its access log
    lines name the process): a worker that has had no backend answer yet allows a page the
    full 5 s (web/budget.py), which is not what this test measures. New connections each time,
    since one kept-alive connection stays with one worker."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert httpx.get(url + "/", timeout=10).status_code == 200
        pids = set()
        for line in log_path.read_text().splitlines():
            record = json.loads(line) if line.startswith("{") else {}
            if record.get("url.path") == "/" and record.get("http.response.status_code") == 200:
                pids.add(record["process.pid"])
        if len(pids) >= workers:
            return
    pytest.fail(f"only {len(pids)} of {workers} frontend workers served a page in 30 s")


@pytest.fixture
def stack(demo_db: Path, log_dir: Path, tmp_path: Path):
    backend = backend_service(copy_db(demo_db, tmp_path), log_dir).start()
    # The production defaults of the page budget (frontend/web/settings.py).
    frontend = frontend_service(
        backend.url,
        log_dir,
        BACKEND_READ_TIMEOUT_SECONDS="0.8",
        BACKEND_MAX_TIMEOUT_SECONDS="5.0",
    ).start()
    yield Stack(backend=backend, frontend=frontend, db_path=tmp_path / "app.db")
    assert backend.process is not None
    if backend.process.poll() is None:
        os.kill(backend.process.pid, signal.SIGCONT)
    frontend.stop()
    backend.stop()


def test_stalled_backend_costs_pages_a_second_and_probes_nothing(stack: Stack) -> None:
    front, back = stack.frontend.url, stack.backend
    assert back.process is not None
    warm_every_worker(stack.frontend.url, stack.frontend.log_path, workers=2)

    def page(i: int) -> tuple[int, float]:
        started = time.perf_counter()
        response = pages.get(f"{front}/flights/{i + 1}")
        return response.status_code, time.perf_counter() - started

    served_before = backend_requests(back.url)
    # One shared client for the pages, and /livez timed from a process of its own: 50 threads
    # building clients in this process would measure this process's GIL, not the frontend.
    pages = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=100))
    poller = subprocess.Popen(
        [sys.executable, "-c", LIVEZ_POLLER, f"127.0.0.1:{stack.frontend.port}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    os.kill(back.process.pid, signal.SIGSTOP)
    try:
        time.sleep(0.3)
        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(page, range(50)))
        time.sleep(0.5)
    finally:
        poller.send_signal(signal.SIGTERM)
        out, _ = poller.communicate(timeout=30)
        stalled_until = time.monotonic()
        os.kill(back.process.pid, signal.SIGCONT)
        pages.close()
    livez = json.loads(out)

    # Normal service resumes by itself.
    recovered = None
    with httpx.Client(timeout=10) as client:
        while time.monotonic() - stalled_until < 30:
            if client.get(front + "/flights/1").status_code == 200:
                recovered = time.monotonic() - stalled_until
                break
            time.sleep(0.1)
    time.sleep(1.0)
    sent_meanwhile = backend_requests(back.url) - served_before

    seconds = sorted(s for _, s in results)
    statuses = {status for status, _ in results}
    page_p95 = statistics.quantiles(seconds, n=20)[18]
    livez_p99 = statistics.quantiles(livez, n=100)[98]
    print(
        f"\nbackend stalled, 50 concurrent pages: statuses {sorted(statuses)}, "
        f"p50 {statistics.median(seconds):.3f} s, p95 {page_p95:.3f} s, max {seconds[-1]:.3f} s"
        f"\n/livez meanwhile: {len(livez)} probes, p50 {statistics.median(livez) * 1000:.1f} ms,"
        f" p99 {livez_p99 * 1000:.1f} ms, max {max(livez) * 1000:.1f} ms"
        f"\nafter SIGCONT: pages 200 again after {recovered} s; the backend answered "
        f"{sent_meanwhile:.0f} requests sent during the stall and recovery (incl. /metrics)"
        f"\ntargets: page p95 <= {PAGE_P95_TARGET_S} s "
        f"{'met' if page_p95 <= PAGE_P95_TARGET_S else 'MISSED'}, /livez p99 <= "
        f"{LIVEZ_P99_TARGET_S * 1000:.0f} ms "
        f"{'met' if livez_p99 <= LIVEZ_P99_TARGET_S else 'MISSED'}"
    )
    assert statuses == {503}
    assert page_p95 <= PAGE_P95_LIMIT_S
    assert livez_p99 <= LIVEZ_P99_LIMIT_S
    assert recovered is not None and recovered <= RECOVERY_LIMIT_S
    assert sent_meanwhile < 30  # was every page's call: 50+ served after the callers left
