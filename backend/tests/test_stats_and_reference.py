import pytest
from fastapi.testclient import TestClient


def test_carrier_stats(client: TestClient) -> None:
    items = client.get("/api/v1/stats/carriers").json()["items"]
    assert [i["carrier"] for i in items] == sorted(i["carrier"] for i in items)
    assert len(items) == 16
    assert sum(i["flights"] for i in items) == 336_776
    assert sum(i["cancelled"] for i in items) == 8_255
    ua = next(i for i in items if i["carrier"] == "UA")
    assert ua["name"] == "United Air Lines Inc."
    assert ua["flights"] == 58_665
    assert ua["mean_arr_delay"] == 3.6  # 3.558, rounded to a tenth of a minute
    assert ua["p95_arr_delay"] > ua["mean_arr_delay"]
    assert 0 < ua["on_time_share"] < 1


def test_carrier_stats_filters(client: TestClient) -> None:
    items = client.get("/api/v1/stats/carriers", params={"origin": "JFK", "month": 1}).json()
    assert items["items"] and all(i["flights"] > 0 for i in items["items"])
    total = sum(i["flights"] for i in items["items"])
    assert total < 336_776 / 12
    assert client.get("/api/v1/stats/carriers", params={"origin": "XXX"}).json() == {"items": []}


@pytest.mark.parametrize("month", [0, 13, "may"])
def test_carrier_stats_bad_month(client: TestClient, month: object) -> None:
    response = client.get("/api/v1/stats/carriers", params={"month": month})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "month"


def test_daily_stats(client: TestClient) -> None:
    items = client.get("/api/v1/stats/daily").json()["items"]
    assert len(items) == 365
    assert items[0]["date"] == "2013-01-01" and items[-1]["date"] == "2013-12-31"
    assert sum(i["flights"] for i in items) == 336_776
    ua = client.get("/api/v1/stats/daily", params={"origin": "EWR", "carrier": "UA"}).json()
    assert 0 < sum(i["flights"] for i in ua["items"]) < 58_665
    assert client.get("/api/v1/stats/daily", params={"carrier": "ZZ"}).json() == {"items": []}


def test_airlines(client: TestClient) -> None:
    items = client.get("/api/v1/airlines").json()["items"]
    assert len(items) == 16
    assert items[0] == {"carrier": "9E", "name": "Endeavor Air Inc."}


def test_airports(client: TestClient) -> None:
    everything = client.get("/api/v1/airports").json()["items"]
    assert len(everything) > 1000
    assert [a["faa"] for a in everything] == sorted(a["faa"] for a in everything)
    origins = client.get("/api/v1/airports", params={"kind": "origin"}).json()["items"]
    assert [a["faa"] for a in origins] == ["EWR", "JFK", "LGA"]
    jfk = origins[1]
    assert jfk["tzone"] == "America/New_York" and jfk["tz"] == -5
    assert client.get("/api/v1/airports", params={"kind": "nope"}).status_code == 422
