"""The dashboard reuses aggregates (backend result cache; frontend per-worker cache of
DASHBOARD_CACHE_SECONDS, default 5 s), yet a write must show on it soon: the backend serves the
figures from before a write while one background statement recomputes them, at most once per
STATS_REFRESH_SECONDS (default 30) per view (backend/api/db/cache.py, refresh_behind), and
each frontend worker keeps a page's data at most DASHBOARD_CACHE_SECONDS after that.

Both caches are primed first (many requests, so every gunicorn worker holds the old figures),
then a flight is created through the API. The first backend answer after it is the old
figure; the new one follows within STATS_REFRESH_SECONDS of the warm-up's statements (at
start-up) plus
that statement. From DASHBOARD_CACHE_SECONDS (+ 0.5 s) after the backend's answer changed,
every dashboard request, on whichever worker, shows the new total.
"""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import API_AUTH, Stack

pytestmark = pytest.mark.timeout(300)

NEW_FLIGHT = {
    "year": 2013, "month": 7, "day": 4, "sched_dep_time": 900, "sched_arr_time": 1200,
    "carrier": "UA", "flight": 4243, "origin": "JFK", "dest": "SFO",
}  # fmt: skip


def test_a_write_shows_on_the_dashboard_a_second_after_the_recomputation(
    fresh_stack: Stack,
) -> None:
    with httpx.Client(timeout=10, headers=API_AUTH) as client:
        for _ in range(20):  # prime both caches on every worker
            page = client.get(fresh_stack.frontend.url + "/")
            assert page.status_code == 200 and "336,776" in page.text

        created = client.post(fresh_stack.backend.url + "/api/v1/flights", json=NEW_FLIGHT)
        assert created.status_code == 201, created.text

        def carriers_total() -> int:
            stats = client.get(fresh_stack.backend.url + "/api/v1/stats/carriers").json()
            return sum(row["flights"] for row in stats["items"])

        assert carriers_total() == 336_776  # the old figures at once: no request waits
        deadline = time.monotonic() + 30 + 20  # STATS_REFRESH_SECONDS's default, and slack
        while carriers_total() != 336_777:
            assert time.monotonic() < deadline, "the stats did not follow the write in 50 s"
            time.sleep(0.05)
        recomputed = time.monotonic()

        # The frontend's default DASHBOARD_CACHE_SECONDS (frontend/web/settings.py), and slack.
        time.sleep(max(0.0, recomputed + 5.0 + 0.5 - time.monotonic()))
        for _ in range(20):  # new connections spread over the workers
            page = httpx.get(fresh_stack.frontend.url + "/", timeout=10)
            assert page.status_code == 200
            assert "336,777" in page.text and "336,776" not in page.text
