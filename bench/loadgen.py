"""One load scenario with Locust as a library (run by bench/run.py in its own process).

`N` users (FastHttpUser, no think time) hit one URL for a warm-up, then for a measured
window; every request has connect/network timeouts, so a hung server fails requests instead
of hanging the run. Prints one JSON object: requests, failures, rps, p50/p95/p99 (ms, exact,
from every response time of the window rather than Locust's rounded buckets).

    .venv/bin/python bench/loadgen.py --host http://127.0.0.1:12016 --path / \
        --users 20 --warmup 3 --duration 15
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time

import gevent
from locust import FastHttpUser, constant, task
from locust.env import Environment

FLIGHT_IDS = 336_776  # the demo rows: ids 1..336776
HEADERS = {"User-Agent": "flights-bench/1.0", "baggage": "synthetic_request=true"}
# The backend refuses /api/v1 without the shared key (bench/run.py passes it).
if os.environ.get("BACKEND_API_KEY"):
    HEADERS["Authorization"] = f"Bearer {os.environ['BACKEND_API_KEY']}"


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) of `values` (inclusive method); None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--path", required=True, help="'{id}' is replaced by a random flight id")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    path_template: str = args.path

    class BenchUser(FastHttpUser):
        host = args.host
        wait_time = constant(0)
        connection_timeout = 5.0
        network_timeout = 10.0

        @task
        def hit(self) -> None:
            path = path_template.replace("{id}", str(random.randint(1, FLIGHT_IDS)))
            with self.client.get(
                path, headers=HEADERS, name=path_template, catch_response=True
            ) as response:
                if response.status_code != 200:
                    response.failure(f"HTTP {response.status_code}")

    env = Environment(user_classes=[BenchUser])
    window = {"on": False}
    times: list[float] = []
    failures = [0]

    def on_request(response_time: float, exception: BaseException | None, **_: object) -> None:
        if not window["on"]:
            return
        if exception is None:
            times.append(response_time)
        else:
            failures[0] += 1

    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    runner.start(args.users, spawn_rate=args.users)
    gevent.sleep(args.warmup)
    window["on"] = True
    started = time.perf_counter()
    gevent.sleep(args.duration)
    window["on"] = False
    elapsed = time.perf_counter() - started
    runner.quit()

    times.sort()
    count = len(times) + failures[0]
    print(
        json.dumps(
            {
                "path": path_template,
                "users": args.users,
                "seconds": round(elapsed, 3),
                "requests": count,
                "failures": failures[0],
                "rps": round(count / elapsed, 1),
                "p50_ms": percentile(times, 0.50),
                "p95_ms": percentile(times, 0.95),
                "p99_ms": percentile(times, 0.99),
            }
        )
    )


if __name__ == "__main__":
    main()
