"""GET /api/v1/flights: sorting, keyset paging both ways, the match count, the new filters."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.db.queries import FLIGHT_SORTS, NULLS_LAST
from api.routes.flights import SortName
from tests.conftest import PROBLEM

PATH = "/api/v1/flights"
TAIL = ("year", "month", "day", "sched_dep_time", "id")


def walk(client: TestClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of a search, following next_cursor; checks each page's total."""
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        body = client.get(PATH, params={**params, "cursor": cursor}).json()
        rows.extend(body["items"])
        assert body["total"] >= len(rows)
        cursor = body["next_cursor"]
        if cursor is None:
            assert body["total"] == len(rows)
            return rows
    raise AssertionError("more than 200 pages")


def key(row: dict[str, Any], sort: str, order: str) -> tuple[Any, ...]:
    value = row.get(sort) if sort != "date" else 0
    if value is None:
        value = NULLS_LAST if order == "asc" else -NULLS_LAST
    return (value, *(row[name] for name in TAIL))


def test_sort_names_are_the_queries_sort_columns() -> None:
    assert set(SortName.__args__) == set(FLIGHT_SORTS)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("sort", "order"),
    [("date", "desc"), ("dep_delay", "desc"), ("arr_delay", "asc"), ("carrier", "desc"),
     ("distance", "asc"), ("dest", "asc"), ("air_time", "desc")],
)  # fmt: skip
def test_sorted_walk_is_total_ordered_and_complete(
    client: TestClient, sort: str, order: str
) -> None:
    # 601 ExpressJet flights, 13 pages; 56 cancelled (NULL delays) sort last.
    params = {"carrier": "YV", "date_from": "2013-01-01", "date_to": "2013-12-31", "limit": 50}
    rows = walk(client, {**params, "sort": sort, "order": order})
    assert len(rows) == 601 and len({r["id"] for r in rows}) == 601
    keys = [key(r, sort, order) for r in rows]
    assert keys == sorted(keys, reverse=order == "desc")


def test_nulls_sort_last_in_both_orders(client: TestClient) -> None:
    for order in ("asc", "desc"):
        rows = walk(client, {"carrier": "YV", "sort": "arr_delay", "order": order, "limit": 200})
        delays = [r["arr_delay"] for r in rows]
        assert None in delays
        assert all(d is None for d in delays[delays.index(None) :]), order


def test_prev_pages_mirror_next_pages(client: TestClient) -> None:
    params = {"origin": "LGA", "dest": "ATL", "sort": "dep_delay", "order": "desc", "limit": 25}
    first = client.get(PATH, params=params).json()
    assert first["prev_cursor"] is None
    pages = [first]
    for _ in range(3):
        pages.append(client.get(PATH, params={**params, "cursor": pages[-1]["next_cursor"]}).json())
    assert all(p["total"] == first["total"] > 100 for p in pages)
    # Back from the fourth page: the third, the second, then the first (no prev_cursor).
    page = pages[-1]
    for expected in reversed(pages[:-1]):
        page = client.get(PATH, params={**params, "cursor": page["prev_cursor"]}).json()
        assert [r["id"] for r in page["items"]] == [r["id"] for r in expected["items"]]
        assert page["next_cursor"] is not None
    assert page["prev_cursor"] is None


def test_prev_from_a_short_start_answers_the_full_first_page(client: TestClient) -> None:
    params = {"carrier": "HA", "limit": 10}
    first = client.get(PATH, params=params).json()
    # Pages of 3: the second page's prev cursor, used with pages of 10 (3 rows before it).
    second = client.get(PATH, params={**params, "limit": 3, "cursor": client.get(
        PATH, params={**params, "limit": 3}).json()["next_cursor"]}).json()  # fmt: skip
    back = client.get(PATH, params={**params, "cursor": second["prev_cursor"]}).json()
    assert [r["id"] for r in back["items"]] == [r["id"] for r in first["items"]]
    assert back["prev_cursor"] is None and back["next_cursor"] == first["next_cursor"]


def test_a_cursor_of_another_sort_is_a_clear_422(client: TestClient) -> None:
    cursor = client.get(PATH, params={"sort": "dep_delay", "order": "desc"}).json()["next_cursor"]
    for other in ({"sort": "date"}, {"sort": "dep_delay", "order": "asc"}, {}):
        response = client.get(PATH, params={**other, "cursor": cursor})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        [error] = response.json()["errors"]
        assert error["field"] == "cursor"
        assert "sort=dep_delay&order=desc" in error["message"]
    same = client.get(PATH, params={"sort": "dep_delay", "order": "desc", "cursor": cursor})
    assert same.status_code == 200


@pytest.mark.parametrize(
    "text",
    ['["dep_delay","desc","next",2013,1,1,500,1]',  # one key value short
     '["carrier","asc","next",5,2013,1,1,500,1]',  # a number where the code goes
     '["date","asc","next","x",1,1,500,1]',  # text where a number goes
     '["date","asc","sideways",2013,1,1,500,1]',
     '["nope","asc","next",2013,1,1,500,1]',
     '["carrier","asc","next","XXXXXXXXXXXX",2013,1,1,500,1]'],
)  # fmt: skip
def test_malformed_cursors_are_422(client: TestClient, text: str) -> None:
    cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    sort = text.split('"')[1]
    response = client.get(
        PATH, params={"cursor": cursor, "sort": sort if sort != "nope" else "date"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "cursor"


def test_unknown_sort_and_order_are_422(client: TestClient) -> None:
    response = client.get(PATH, params={"sort": "tailnum; drop", "order": "sideways"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"sort", "order"}


def test_total_counts_every_match(client: TestClient) -> None:
    assert client.get(PATH, params={"limit": 1}).json()["total"] == 336_776
    body = client.get(PATH, params={"carrier": "HA", "limit": 1}).json()
    assert body["total"] == 342


def test_cancelled_filter(client: TestClient) -> None:
    everything = client.get(PATH, params={"limit": 1}).json()["total"]
    cancelled = walk(client, {"carrier": "YV", "cancelled": "true", "limit": 200})
    assert len(cancelled) == 56 and all(r["dep_time"] is None for r in cancelled)
    flown = client.get(PATH, params={"carrier": "YV", "cancelled": "false", "limit": 200}).json()
    assert all(r["dep_time"] is not None for r in flown["items"])
    assert len(cancelled) + flown["total"] == 601
    total_cancelled = client.get(PATH, params={"cancelled": "true", "limit": 1}).json()["total"]
    assert 8_000 < total_cancelled < 9_000 and total_cancelled < everything


def test_arrival_delay_and_hour_filters(client: TestClient) -> None:
    params = {"origin": "JFK", "min_arr_delay": 120, "hour": 18, "limit": 200}
    rows = walk(client, params)
    assert rows
    assert all(r["arr_delay"] >= 120 and r["hour"] == 18 and r["origin"] == "JFK" for r in rows)


@pytest.mark.parametrize(
    ("params", "fields"),
    [({"hour": 24}, {"hour"}), ({"hour": -1, "min_arr_delay": 99999}, {"hour", "min_arr_delay"}),
     ({"cancelled": "maybe"}, {"cancelled"})],
)  # fmt: skip
def test_bad_new_filters_are_422(
    client: TestClient, params: dict[str, Any], fields: set[str]
) -> None:
    response = client.get(PATH, params=params)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == fields


def test_count_is_reused_across_pages_until_a_write(writable_client: TestClient) -> None:
    c = writable_client
    params = {"carrier": "HA", "limit": 5}
    first = c.get(PATH, params=params).json()
    assert first["total"] == 342
    created = c.post(PATH, json={"year": 2013, "month": 7, "day": 4, "sched_dep_time": 900,
                                 "sched_arr_time": 1500, "carrier": "HA", "flight": 51,
                                 "origin": "JFK", "dest": "HNL"})  # fmt: skip
    assert created.status_code == 201, created.text
    assert c.get(PATH, params={**params, "cursor": first["next_cursor"]}).json()["total"] == 343
