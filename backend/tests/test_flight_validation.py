"""Flight writes: every invalid field in one 422 (schema rules and the rules that need the
database together), and dates outside the data's years refused with a clear field error (the
years the data holds: 2013 for the demo data, 2013..2014 for `load-demo-data --scale 2`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.db.demo_data import load_demo_data
from api.main import create_app, open_database
from tests.conftest import AUTH, PROBLEM, ReadyTestClient, make_settings, new_flight

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


def test_the_schema_states_no_fixed_year_range(client: TestClient) -> None:
    # The range is the data's (read when the database opens): a static minimum/maximum would
    # be wrong for any other data, so the schema describes the rule instead.
    for model in ("FlightCreate", "FlightPatch"):
        schema = client.get("/openapi.json").json()["components"]["schemas"][model]
        year = schema["properties"]["year"]
        year = next((s for s in year.get("anyOf", []) if s.get("type") == "integer"), year)
        assert year["type"] == "integer" and "minimum" not in year and "maximum" not in year
        assert "2013" in year["description"], year


def test_a_year_and_other_rules_fail_together(client: TestClient) -> None:
    body = new_flight(year=2016, carrier="ZZ", month=13)
    assert fields_of(client.post(PATH, json=body)) == {"year", "carrier", "month"}


def test_first_and_last_day_of_the_data_year_are_accepted(writable_client: TestClient) -> None:
    for month, day in ((1, 1), (12, 31)):
        response = writable_client.post(PATH, json=new_flight(month=month, day=day))
        assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def two_years_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed database with `load-demo-data --scale 2`: the flights of 2013 and 2014."""
    path = tmp_path_factory.mktemp("two-years") / "app.db"
    database = open_database(make_settings(path))
    try:
        with database.session() as cursor:
            load_demo_data(cursor, scale=2)
    finally:
        database.close()
    return path


@pytest.fixture
def two_years_client(two_years_db: Path) -> Iterator[TestClient]:
    with ReadyTestClient(create_app(make_settings(two_years_db)), headers=AUTH) as test_client:
        yield test_client


def test_the_accepted_years_are_the_data_years(two_years_client: TestClient) -> None:
    c = two_years_client
    created = c.post(PATH, json=new_flight(year=2014, month=12, day=31))
    assert created.status_code == 201, created.text
    assert created.json()["year"] == 2014
    for year in (2016, 2015, 2012):
        refused = c.post(PATH, json=new_flight(year=year))
        assert fields_of(refused) == {"year"}
        [error] = refused.json()["errors"]
        assert error["message"] == (
            f"{year} is outside the data's range: this explorer holds the flights of "
            "2013 to 2014 only"
        )
    assert fields_of(c.patch(created.headers["Location"], json={"year": 2016})) == {"year"}
    patched = c.patch(created.headers["Location"], json={"year": 2013})
    assert patched.status_code == 200, patched.text
