from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PROBLEM, new_flight

# SJU is absent from airports, like in the real data.
NEW_FLIGHT: dict[str, Any] = new_flight(dest="SJU", dep_time=920, dep_delay=5, tailnum="N14228")


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def sort_key(item: dict[str, Any]) -> tuple[int, ...]:
    return (item["year"], item["month"], item["day"], item["sched_dep_time"], item["id"])


def count_flights(client: TestClient) -> int:
    items = client.get("/api/v1/stats/carriers").json()["items"]
    return sum(item["flights"] for item in items)


def assert_422(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["title"] == "Unprocessable Content"
    assert body["status"] == 422
    assert {"type", "detail", "instance"} <= body.keys()
    assert field in [error["field"] for error in body["errors"]], body


# --- listing ------------------------------------------------------------------------------


def test_list_default_page(client: TestClient) -> None:
    body = client.get("/api/v1/flights").json()
    assert len(body["items"]) == 50
    assert body["items"][0]["id"] == 1
    assert body["next_cursor"]


def test_list_filters(client: TestClient) -> None:
    params = {
        "origin": "JFK",
        "carrier": "B6",
        "dest": "BOS",
        "date_from": "2013-03-01",
        "date_to": "2013-03-02",
        "min_dep_delay": 10,
        "limit": 200,
    }
    body = client.get("/api/v1/flights", params=params).json()
    assert body["items"], "expected some delayed JetBlue JFK-BOS flights"
    for item in body["items"]:
        assert (item["origin"], item["carrier"], item["dest"]) == ("JFK", "B6", "BOS")
        assert (item["year"], item["month"]) == (2013, 3) and item["day"] in (1, 2)
        assert item["dep_delay"] >= 10


def test_empty_query_params_mean_not_set(client: TestClient) -> None:
    blank = "origin=&dest=&carrier=&date_from=&date_to=&min_dep_delay=&cursor=&limit=3"
    body = client.get(f"/api/v1/flights?{blank}").json()
    assert [item["id"] for item in body["items"]] == [1, 2, 3]
    stats = client.get("/api/v1/stats/carriers?origin=&month=").json()["items"]
    assert len(stats) == 16
    assert len(client.get("/api/v1/flights?carrier=UA&dest=&limit=2").json()["items"]) == 2


def test_list_no_match_is_empty(client: TestClient) -> None:
    body = client.get("/api/v1/flights", params={"origin": "XXX"}).json()
    assert body == {"items": [], "total": 0, "next_cursor": None, "prev_cursor": None}


def test_keyset_pagination_walks_everything_in_order(client: TestClient) -> None:
    params: dict[str, Any] = {"carrier": "HA", "limit": 37}  # 342 flights, 10 pages
    seen: list[dict[str, Any]] = []
    pages = 0
    while True:
        body = client.get("/api/v1/flights", params=params).json()
        seen.extend(body["items"])
        pages += 1
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)) == 342
    assert pages == 10
    assert [sort_key(item) for item in seen] == sorted(sort_key(item) for item in seen)


def test_last_page_has_null_cursor_when_exactly_full(client: TestClient) -> None:
    body = client.get("/api/v1/flights", params={"carrier": "HA", "limit": 200}).json()
    rest = client.get(
        "/api/v1/flights", params={"carrier": "HA", "limit": 142, "cursor": body["next_cursor"]}
    ).json()
    assert len(rest["items"]) == 142
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    ["not-base64!", base64.urlsafe_b64encode(b'{"a": 1}').decode(), "WzEsMiwzXQ", "%%%"],
)
def test_bad_cursor_is_422(client: TestClient, cursor: str) -> None:
    assert_422(client.get("/api/v1/flights", params={"cursor": cursor}), "cursor")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 201}, "limit"),
        ({"limit": 0}, "limit"),
        ({"date_from": "2013-02-30"}, "date_from"),
        ({"min_dep_delay": "soon"}, "min_dep_delay"),
    ],
)
def test_bad_query_params_are_422(client: TestClient, params: dict[str, Any], field: str) -> None:
    assert_422(client.get("/api/v1/flights", params=params), field)


# --- single flights -----------------------------------------------------------------------


def test_get_and_404(client: TestClient) -> None:
    assert client.get("/api/v1/flights/1").json()["tailnum"] == "N14228"
    response = client.get("/api/v1/flights/999999999")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404 and body["instance"] == "/api/v1/flights/999999999"


def test_unknown_path_is_problem_json(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert client.put("/api/v1/flights").status_code == 405


def test_create_get_patch_delete_round_trip(writable_client: TestClient) -> None:
    c = writable_client
    created = c.post("/api/v1/flights", json=NEW_FLIGHT)
    assert created.status_code == 201, created.text
    flight = created.json()
    assert flight["id"] == 336_777
    assert created.headers["location"] == "/api/v1/flights/336777"
    assert (flight["hour"], flight["minute"]) == (9, 15)
    assert flight["time_hour"] == "2013-07-04T13:00:00Z"  # EDT is UTC-4
    assert flight["arr_time"] is None

    detail = c.get("/api/v1/flights/336777").json()
    assert {k: v for k, v in detail.items() if k in flight} == flight
    # SJU is absent from airports: no name; N14228 is a known aircraft.
    assert detail["origin_airport"] == {"name": "John F Kennedy Intl", "tzone": "America/New_York"}
    assert detail["dest_airport"] is None
    assert detail["plane"] == {
        "manufacturer": "BOEING",
        "model": "737-824",
        "year": 1999,
        "seats": 149,
    }

    patched = c.patch("/api/v1/flights/336777", json={"sched_dep_time": 2330, "arr_delay": -3})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["sched_dep_time"], body["hour"], body["minute"]) == (2330, 23, 30)
    assert body["time_hour"] == "2013-07-05T03:00:00Z"
    assert body["arr_delay"] == -3 and body["carrier"] == "UA"

    cleared = c.patch("/api/v1/flights/336777", json={"dep_time": None, "tailnum": None})
    assert cleared.json()["dep_time"] is None and cleared.json()["tailnum"] is None

    assert c.delete("/api/v1/flights/336777").status_code == 204
    assert c.get("/api/v1/flights/336777").status_code == 404
    assert c.delete("/api/v1/flights/336777").status_code == 404
    assert c.patch("/api/v1/flights/336777", json={"day": 5}).status_code == 404

    # Ids are never reused, even after the highest one was deleted.
    assert c.post("/api/v1/flights", json=NEW_FLIGHT).json()["id"] == 336_778


def test_patch_keeps_stored_2400(writable_client: TestClient) -> None:
    # The data holds 2400 for midnight (flight 818 arrived at 2400); patching another field
    # must not reject the stored value, only values that are sent are checked.
    assert writable_client.get("/api/v1/flights/818").json()["arr_time"] == 2400
    patched = writable_client.patch("/api/v1/flights/818", json={"dest": "BOS"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["dest"], patched.json()["arr_time"]) == ("BOS", 2400)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"carrier": "ZZ"}, "carrier"),
        ({"carrier": "u"}, "carrier"),
        ({"origin": "BOS"}, "origin"),
        ({"origin": "jfk"}, "origin"),
        ({"dest": "Boston"}, "dest"),
        ({"sched_dep_time": 2460}, "sched_dep_time"),
        ({"sched_dep_time": 2400}, "sched_dep_time"),
        ({"sched_dep_time": -1}, "sched_dep_time"),
        ({"dep_time": 1275}, "dep_time"),
        ({"arr_time": 2400}, "arr_time"),
        ({"month": 2, "day": 30}, "day"),
        ({"month": 13}, "month"),
        ({"year": 1899}, "year"),
        ({"flight": 0}, "flight"),
        ({"dep_delay": 100000}, "dep_delay"),
        ({"distance": -5}, "distance"),
        ({"air_time": 0}, "air_time"),
        ({"tailnum": "n 123"}, "tailnum"),
        ({"hour": 5}, "hour"),
        ({"id": 5}, "id"),
    ],
)
def test_invalid_create_writes_nothing(
    writable_client: TestClient, change: dict[str, Any], field: str
) -> None:
    before = count_flights(writable_client)
    response = writable_client.post("/api/v1/flights", json=NEW_FLIGHT | change)
    assert_422(response, field)
    assert response.json()["instance"] == "/api/v1/flights"
    assert count_flights(writable_client) == before


def test_unknown_carrier_message(client: TestClient) -> None:
    body = client.post("/api/v1/flights", json=NEW_FLIGHT | {"carrier": "ZZ"}).json()
    assert body["errors"] == [{"field": "carrier", "message": "unknown carrier 'ZZ'"}]
    assert body["detail"] == "1 field failed validation"


def test_missing_required_fields(client: TestClient) -> None:
    body = client.post("/api/v1/flights", json={"year": 2013}).json()
    fields = {error["field"] for error in body["errors"]}
    assert {"month", "day", "carrier", "origin", "dest", "flight"} <= fields


def test_broken_json_body(client: TestClient) -> None:
    response = client.post(
        "/api/v1/flights", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"day": 31, "month": 4}, "day"),
        ({"month": 2, "day": 29}, "day"),  # 2013 is not a leap year
        ({"carrier": "ZZ"}, "carrier"),
        ({"origin": "SJU"}, "origin"),
        ({"carrier": None}, "carrier"),
        ({"sched_arr_time": 2400}, "sched_arr_time"),
        ({"flight": -1}, "flight"),
    ],
)
def test_invalid_patch_changes_nothing(
    writable_client: TestClient, change: dict[str, Any], field: str
) -> None:
    before = writable_client.get("/api/v1/flights/10").json()
    assert_422(writable_client.patch("/api/v1/flights/10", json=change), field)
    assert writable_client.get("/api/v1/flights/10").json() == before


def test_patch_merged_record_must_be_valid(writable_client: TestClient) -> None:
    # Flight 1 is on 2013-01-01: day 31 alone is fine, but month 2 then day 31 is not.
    assert writable_client.patch("/api/v1/flights/1", json={"day": 31}).status_code == 200
    assert_422(writable_client.patch("/api/v1/flights/1", json={"month": 2}), "day")


def test_concurrent_creates_get_distinct_ids(writable_client: TestClient) -> None:
    def create(n: int) -> Any:
        return writable_client.post("/api/v1/flights", json=NEW_FLIGHT | {"flight": n + 1})

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(create, range(24)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}
    ids = [r.json()["id"] for r in responses if r.status_code == 201]
    assert len(ids) == len(set(ids))
    assert statuses.count(201) >= 20, statuses


# Regression: integers beyond what DuckDB binds (128 bits) made DuckDB raise and the API
# answer 500 with a logged stack trace, from a public URL (review finding).
HUGE = "9" * 40


@pytest.mark.parametrize("method", ["get", "delete"])
def test_huge_flight_id_is_404_not_500(client: TestClient, method: str) -> None:
    response = getattr(client, method)(f"/api/v1/flights/{HUGE}")
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == PROBLEM


def test_huge_flight_id_patch_is_404_not_500(client: TestClient) -> None:
    response = client.patch(f"/api/v1/flights/{HUGE}", json={"dep_delay": 1})
    assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_dep_delay": HUGE}, "min_dep_delay"),
        ({"cursor": b64(f'["date","asc","next",2013,1,1,{HUGE},1]')}, "cursor"),
        ({"origin": "jfk; drop"}, "origin"),
        ({"carrier": "TOO-LONG"}, "carrier"),
    ],
)
def test_out_of_range_filters_are_422_not_500(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    path = "/api/v1/flights"
    assert_422(client.get(path, params=params), field)


@pytest.mark.parametrize(("path", "params"), [
    ("/api/v1/stats/carriers", {"origin": "not-an-airport"}),
    ("/api/v1/stats/daily", {"carrier": "not-a-carrier"}),
])  # fmt: skip
def test_stats_filters_are_validated(client: TestClient, path: str, params: dict) -> None:
    assert_422(client.get(path, params=params), next(iter(params)))
