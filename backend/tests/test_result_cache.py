"""The aggregate-results cache (api/db/cache.py): reused between calls, invalidated by writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.db import database
from api.db.cache import ResultCache
from api.db.database import Database, run_query, transaction

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


def test_a_write_is_reflected_by_the_next_stats_call(writable_client: TestClient) -> None:
    before, before_jfk, total = (
        ua_flights(writable_client),
        ua_flights(writable_client, origin="JFK"),
        daily_total(writable_client),
    )
    assert total == 336_776
    assert ua_flights(writable_client) == before  # served from the cache, still right

    created = writable_client.post("/api/v1/flights", json=NEW_FLIGHT)
    assert created.status_code == 201
    assert ua_flights(writable_client) == before + 1
    assert ua_flights(writable_client, origin="JFK") == before_jfk + 1
    assert daily_total(writable_client) == total + 1

    flight_id = created.json()["id"]
    patched = writable_client.patch(f"/api/v1/flights/{flight_id}", json={"carrier": "AA"})
    assert patched.status_code == 200
    assert ua_flights(writable_client) == before

    assert writable_client.delete(f"/api/v1/flights/{flight_id}").status_code == 204
    assert daily_total(writable_client) == total


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
