"""One load scenario with Locust as a library (run by bench/run.py in its own process).

`N` users (FastHttpUser, no think time) hit one URL for a warm-up, then for a measured
window; every request has connect/network timeouts, so a hung server fails requests instead
of hanging the run. Prints one JSON object: requests, failures, rps, p50/p95/p99 (ms, exact,
from every response time of the window rather than Locust's rounded buckets).

`--times-out FILE` writes every successful response time of the window (ms, a JSON list), so
bench/run.py can merge the windows of several rounds.

`--writes-per-second R --write-url <backend>` adds a writer beside the users: R flight creates
per second (POST /api/v1/flights) for the whole run, so the measured reads see the data
change; their count and failures are reported as `writes`/`write_failures` (not in rps).

    .venv/bin/python bench/loadgen.py --host http://127.0.0.1:12016 --path / \
        --users 20 --warmup 3 --duration 15 [--max-id 10103280]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import urllib.request

import gevent
from locust import FastHttpUser, constant, task
from locust.env import Environment
from percentiles import percentile

FLIGHT_IDS = 336_776  # the demo rows: ids 1..336776 (x SCALE years: --max-id)
# One valid new flight (api/schemas.py FlightCreate), dated inside the data's first year.
NEW_FLIGHT = json.dumps(
    {
        "year": 2013, "month": 7, "day": 14, "sched_dep_time": 900, "dep_time": 905,
        "dep_delay": 5, "sched_arr_time": 1200, "arr_time": 1158, "arr_delay": -2,
        "carrier": "UA", "flight": 1234, "tailnum": "N14228", "origin": "JFK", "dest": "LAX",
        "air_time": 330, "distance": 2475,
    }
).encode()  # fmt: skip
HEADERS = {"User-Agent": "flights-bench/1.0", "baggage": "synthetic_request=true"}
# The backend refuses /api/v1 without the shared key (bench/run.py passes it).
if os.environ.get("BACKEND_API_KEY"):
    HEADERS["Authorization"] = f"Bearer {os.environ['BACKEND_API_KEY']}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--path", required=True, help="'{id}' is replaced by a random flight id")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--max-id", type=int, default=FLIGHT_IDS, help="ids are 1..max-id")
    parser.add_argument("--writes-per-second", type=float, default=0.0)
    parser.add_argument("--write-url", default="", help="the backend that takes the writes")
    parser.add_argument("--times-out", default="", help="write the window's response times here")
    args = parser.parse_args()
    path_template: str = args.path
    max_id: int = args.max_id

    class BenchUser(FastHttpUser):
        host = args.host
        wait_time = constant(0)
        connection_timeout = 5.0
        network_timeout = 10.0

        @task
        def hit(self) -> None:
            path = path_template.replace("{id}", str(random.randint(1, max_id)))
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
    writes = {"ok": 0, "failed": 0}

    def writer() -> None:
        # urllib on gevent's patched sockets (locust patches on import): cooperative.
        while True:
            started = time.monotonic()
            request = urllib.request.Request(
                args.write_url + "/api/v1/flights",
                data=NEW_FLIGHT,
                headers={**HEADERS, "Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    writes["ok" if answer.status == 201 else "failed"] += 1
            except OSError:
                writes["failed"] += 1
            gevent.sleep(max(0.0, 1 / args.writes_per_second - (time.monotonic() - started)))

    runner = env.create_local_runner()
    if args.writes_per_second > 0:
        gevent.spawn(writer)
    runner.start(args.users, spawn_rate=args.users)
    gevent.sleep(args.warmup)
    window["on"] = True
    started = time.perf_counter()
    gevent.sleep(args.duration)
    window["on"] = False
    elapsed = time.perf_counter() - started
    runner.quit()

    times.sort()
    if args.times_out:  # every successful response time of the window (ms), for bench/run.py
        with open(args.times_out, "w") as out:
            json.dump([round(t, 3) for t in times], out)
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
                "writes": writes["ok"],
                "write_failures": writes["failed"],
            }
        )
    )


if __name__ == "__main__":
    main()
