"""Backend probes under load (issue 10, finding 2): with 80 concurrent heavy API requests
in flight, `/livez`, `/readyz` and `/health` still answer at once.

They used to be sync endpoints in the request threadpool, queued behind the heavy requests
(`/readyz` up to 3.8 s, `/health` 5.2 s; 9.9-12.9 s p99 measured here before the fix). The
figures are printed beside the issue's target (100 ms p99, met on a quiet machine); the
asserted bound (1 s) is one a busy CI machine cannot trip and the old code could not meet.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import API_AUTH, backend_service, copy_db

pytestmark = pytest.mark.timeout(180)

PROBE_P99_TARGET_S = 0.1  # the target, printed
PROBE_P99_LIMIT_S = 1.0  # asserted
# Polls /livez, /readyz and /health in turn (every 20 ms) for argv[2] seconds; prints the
# latencies (seconds) per path as JSON. Exits non-zero on any status but 200.
PROBE_POLLER = """
import http.client, json, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
latencies = {"/livez": [], "/readyz": [], "/health": []}
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
end = time.monotonic() + seconds
while time.monotonic() < end:
    for path, values in latencies.items():
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        values.append(time.perf_counter() - started)
        assert response.status == 200, (path, response.status)
    time.sleep(0.02)
print(json.dumps(latencies))
"""
HEAVY = [
    "/api/v1/flights?limit=200&min_dep_delay=30",
    "/api/v1/flights?limit=200&origin=JFK&date_from=2013-06-01",
    "/api/v1/flights?limit=200&carrier=UA&min_dep_delay=5",
    "/api/v1/flights?limit=200&dest=LAX",
]


def test_probes_answer_within_100_ms_under_80_heavy_requests(
    demo_db: Path, log_dir: Path, tmp_path: Path
) -> None:
    backend = backend_service(copy_db(demo_db, tmp_path), log_dir).start()
    stop = threading.Event()
    heavy_done = [0]

    def heavy(i: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=60)
        while not stop.is_set():
            connection.request("GET", HEAVY[i % len(HEAVY)], headers=API_AUTH)
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            heavy_done[0] += 1
        connection.close()

    workers = [threading.Thread(target=heavy, args=(i,)) for i in range(80)]
    try:
        for thread in workers:
            thread.start()
        time.sleep(2)  # the heavy requests fill the threadpool first
        # Timed from a process of its own: 80 client threads here would measure this
        # process's GIL, not the backend.
        poller = subprocess.Popen(
            [sys.executable, "-c", PROBE_POLLER, str(backend.port), "10"],
            stdout=subprocess.PIPE,
            text=True,
        )
        out, _ = poller.communicate(timeout=60)
        assert poller.returncode == 0
    finally:
        stop.set()
        for thread in workers:
            thread.join(timeout=60)
        backend.stop()
    latencies: dict[str, list[float]] = json.loads(out)
    print(f"\n80 heavy requests in flight ({heavy_done[0]} answered in ~10 s):")
    for path, values in latencies.items():
        p99 = statistics.quantiles(values, n=100)[98]
        verdict = "met" if p99 <= PROBE_P99_TARGET_S else "MISSED"
        print(
            f"  {path}: {len(values)} probes, p50 {statistics.median(values) * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {max(values) * 1000:.1f} ms "
            f"(target p99 <= {PROBE_P99_TARGET_S * 1000:.0f} ms: {verdict})"
        )
    for path, values in latencies.items():
        assert len(values) >= 20, path
        assert statistics.quantiles(values, n=100)[98] <= PROBE_P99_LIMIT_S, path
