"""The aggregate-results cache (api/db/cache.py): reused between calls, invalidated by writes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.db import database
from api.db.cache import ResultCache
from api.db.database import Database, run_query, transaction
from tests.conftest import eventually

NEW_FLIGHT = {
    "year": 2013, "month": 7, "day": 4, "sched_dep_time": 900, "sched_arr_time": 1200,
    "carrier": "UA", "flight": 4242, "origin": "JFK", "dest": "SFO",
    "dep_time": 905, "dep_delay": 5, "arr_time": 1230, "arr_delay": 30,
}  # fmt: skip


def ua_flights(client: TestClient, **params: str) -> int:
    response = client.get("/api/v1/stats/carriers", params=params)
    assert response.status_code == 200
    (ua,) = [row for row in response.json()["items"] if row["carrier"] == "UA"]
    return int(ua["flights"])


def daily_total(client: TestClient) -> int:
    response = client.get("/api/v1/stats/daily")
    assert response.status_code == 200
    return sum(day["flights"] for day in response.json()["items"])


def test_a_write_is_reflected_once_the_stats_are_recomputed(writable_client: TestClient) -> None:
    """Create, edit, delete: each shows in the stats after one background recomputation
    (api/db/cache.py, refresh_behind); the first answer after a write is the old figure."""
    before, before_jfk, total = (
        ua_flights(writable_client),
        ua_flights(writable_client, origin="JFK"),
        daily_total(writable_client),
    )
    assert total == 336_776
    assert ua_flights(writable_client) == before  # served from the cache, still right

    def settles(read: Callable[[], int], expected: int) -> None:
        assert eventually(read, lambda value: value == expected) == expected

    created = writable_client.post("/api/v1/flights", json=NEW_FLIGHT)
    assert created.status_code == 201
    assert ua_flights(writable_client) == before  # starts the recomputation
    settles(lambda: ua_flights(writable_client), before + 1)
    settles(lambda: ua_flights(writable_client, origin="JFK"), before_jfk + 1)
    settles(lambda: daily_total(writable_client), total + 1)

    flight_id = created.json()["id"]
    patched = writable_client.patch(f"/api/v1/flights/{flight_id}", json={"carrier": "AA"})
    assert patched.status_code == 200
    settles(lambda: ua_flights(writable_client), before)

    assert writable_client.delete(f"/api/v1/flights/{flight_id}").status_code == 204
    settles(lambda: daily_total(writable_client), total)


def test_hits_skip_duckdb_and_writes_invalidate(template_db: Path, tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "app.db"
    shutil.copyfile(template_db, path)
    db = Database.open(path)
    cache = ResultCache()
    try:
        with db.session() as cursor:
            first = cache.run(cursor, "airlines_list")
            assert cache.run(cursor, "airlines_list") is first  # reused, not re-run
            run_query(cursor, "readiness_read_rows")  # a read does not invalidate
            assert cache.run(cursor, "airlines_list") is first
            generation = database.write_generation()
            with transaction(cursor):
                cursor.execute("UPDATE airlines SET name = 'Renamed' WHERE carrier = 'UA'")
            assert database.write_generation() > generation  # COMMIT bumped it
            fresh = cache.run(cursor, "airlines_list")
            assert fresh is not first
            assert dict(fresh.rows)["UA"] == "Renamed"
    finally:
        db.close()


def test_only_cacheable_queries(template_db: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not cacheable"):
        ResultCache().run(None, "flight_get", {"id": 1})  # type: ignore[arg-type]


def test_kept_values_survive_writes_and_failures_are_not_kept() -> None:
    """`keep` (the detail's airports and planes, tables the API never writes): computed once,
    kept across writes; a compute that raised is tried again."""
    cache = ResultCache()
    calls: list[int] = []

    def compute() -> dict[str, int]:
        calls.append(1)
        return {"JFK": len(calls)}

    def fail() -> dict[str, int]:
        raise RuntimeError("database unavailable")

    with pytest.raises(RuntimeError):
        cache.keep(("refs",), fail)
    first = cache.keep(("refs",), compute)
    generation = database.write_generation()
    database._data_changed()  # what every committed write does
    assert database.write_generation() > generation
    assert cache.keep(("refs",), compute) is first
    assert calls == [1]


def test_the_detail_names_stay_right_after_a_flight_write(writable_client: TestClient) -> None:
    before = writable_client.get("/api/v1/flights/1").json()
    assert before["origin_airport"]["name"] == "Newark Liberty Intl"
    created = writable_client.post("/api/v1/flights", json=NEW_FLIGHT)
    assert created.status_code == 201, created.text
    detail = writable_client.get(f"/api/v1/flights/{created.json()['id']}").json()
    assert detail["origin_airport"]["name"] == "John F Kennedy Intl"
    assert detail["dest_airport"]["name"] == "San Francisco Intl"


def held_after_the_first() -> tuple[Callable[[], int], threading.Event, list[int]]:
    """A compute returning how many times it ran; every run after the first waits (at most
    10 s) for the returned event."""
    release = threading.Event()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        if len(calls) > 1:
            release.wait(10)
        return len(calls)

    return compute, release, calls


def test_refresh_behind_serves_the_old_value_while_one_thread_recomputes() -> None:
    """`refresh_behind` (the stats partials): after a write, callers get the value from before
    it at once while ONE background thread recomputes it; a write during that recomputation
    starts another after it; a failed recomputation keeps the old value and is logged."""
    from structlog.testing import capture_logs

    cache = ResultCache()
    compute, release, calls = held_after_the_first()

    assert cache.refresh_behind(("p",), compute) == (1, database.write_generation())
    database._data_changed()
    # Many callers while the recomputation is held: all get 1 at once, one thread computes.
    assert [cache.refresh_behind(("p",), compute)[0] for _ in range(20)] == [1] * 20
    database._data_changed()  # a write while it runs: its result is already out of date
    release.set()
    value = eventually(lambda: cache.refresh_behind(("p",), compute), lambda e: e[0] == 3)
    assert value == (3, database.write_generation())
    assert calls == [1, 1, 1]  # the first, the held one, the one after the second write

    def fail() -> int:
        raise RuntimeError("database unavailable")

    database._data_changed()
    with capture_logs() as logs:
        assert cache.refresh_behind(("p",), fail)[0] == 3  # the old value, at once
        eventually(lambda: logs, lambda lines: bool(lines), timeout=5)
    assert [(line["event"], line["log_level"]) for line in logs] == [
        ("cache.refresh_failed", "warning")
    ]
    assert cache.refresh_behind(("p",), compute)[0] == 3  # retried: the old value meanwhile
    assert eventually(lambda: cache.refresh_behind(("p",), compute)[0], lambda v: v == 4) == 4


def test_refresh_behind_recomputes_a_key_at_most_once_per_interval() -> None:
    """`refresh_seconds` (STATS_REFRESH_SECONDS): writes within the interval after a
    computation began do not start another; the first call after it does. On a clock of the
    test's own, so the machine's speed cannot move the interval."""
    now = [100.0]
    cache = ResultCache(refresh_seconds=0.5, clock=lambda: now[0])
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.refresh_behind(("p",), compute)[0] == 1
    database._data_changed()
    now[0] = 100.49
    assert cache.refresh_behind(("p",), compute)[0] == 1  # within 0.5 s: no recomputation
    assert cache.wait_for_refreshes(5) and calls == [1]  # none was started
    now[0] = 100.5
    assert eventually(lambda: cache.refresh_behind(("p",), compute)[0], lambda v: v == 2) == 2
    assert calls == [1, 1]


def test_wait_for_refreshes_returns_once_the_background_recomputation_ended() -> None:
    """Shutdown waits for a running recomputation before the database closes (api/main.py)."""
    cache = ResultCache()
    compute, release, _calls = held_after_the_first()

    cache.refresh_behind(("p",), compute)
    database._data_changed()
    cache.refresh_behind(("p",), compute)  # starts the held recomputation
    assert cache.wait_for_refreshes(0.2) is False  # still running
    release.set()
    assert cache.wait_for_refreshes(5) is True
    assert cache.refresh_behind(("p",), compute)[0] == 2
