"""Flight writes: every invalid field in one 422 (schema rules and the rules that need the
database together), and dates outside the data's year refused with a clear field error."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PROBLEM, new_flight

PATH = "/api/v1/flights"


def fields_of(response: Any) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    return {error["field"] for error in response.json()["errors"]}


def test_schema_and_database_rules_fail_together_on_create(client: TestClient) -> None:
    body = new_flight(month=13, sched_dep_time=2575, carrier="ZZ", origin="LAX", dest="bad")
    assert fields_of(client.post(PATH, json=body)) == {
        "month", "sched_dep_time", "carrier", "origin", "dest",
    }  # fmt: skip


def test_a_bad_day_and_an_unknown_carrier_together(client: TestClient) -> None:
    body = new_flight(month=2, day=30, carrier="ZZ", flight=0)
    assert fields_of(client.post(PATH, json=body)) == {"day", "carrier", "flight"}


def test_missing_and_unknown_fields_with_rule_failures(client: TestClient) -> None:
    body = new_flight(carrier="ZZ", colour="red")
    del body["flight"]
    assert fields_of(client.post(PATH, json=body)) == {"flight", "colour", "carrier"}


def test_patch_reports_every_field_too(writable_client: TestClient) -> None:
    c = writable_client
    response = c.patch(f"{PATH}/1", json={"carrier": "ZZ", "dep_delay": 99999, "origin": None})
    assert fields_of(response) == {"carrier", "dep_delay", "origin"}
    assert c.get(f"{PATH}/1").json()["carrier"] == "UA"  # nothing written


@pytest.mark.parametrize(
    ("date", "field"),
    [((2014, 1, 1), "year"), ((2012, 12, 31), "year"), ((1999, 1, 1), "year")],
)
def test_dates_outside_the_data_year_are_refused(
    writable_client: TestClient, date: tuple[int, int, int], field: str
) -> None:
    year, month, day = date
    response = writable_client.post(PATH, json=new_flight(year=year, month=month, day=day))
    assert fields_of(response) == {field}
    [error] = response.json()["errors"]
    assert "2013" in error["message"] and str(year) in error["message"]
    patched = writable_client.patch(f"{PATH}/1", json={"year": year})
    assert fields_of(patched) == {"year"}


def test_the_schema_states_the_data_year(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["FlightCreate"]
    assert (schema["properties"]["year"]["minimum"], schema["properties"]["year"]["maximum"]) == (
        2013,
        2013,
    )


def test_first_and_last_day_of_the_data_year_are_accepted(writable_client: TestClient) -> None:
    for month, day in ((1, 1), (12, 31)):
        response = writable_client.post(PATH, json=new_flight(month=month, day=day))
        assert response.status_code == 201, response.text
