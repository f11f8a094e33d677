from __future__ import annotations

from datetime import date

import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict

from web.backend_client import FieldProblem
from web.forms import FlightForm, SearchForm, apply_backend_errors, is_clock_time, options

VALID = {
    "date": "2013-03-04", "carrier": "UA", "flight": "100", "tailnum": "N1", "origin": "EWR",
    "dest": "lax", "sched_dep_time": "900", "sched_arr_time": "1200", "dep_time": "",
    "arr_time": "", "dep_delay": "", "arr_delay": "", "air_time": "", "distance": "2454",
}  # fmt: skip


@pytest.fixture
def form_app(make_app) -> Flask:  # type: ignore[no-untyped-def]
    return make_app(BACKEND_URL="http://127.0.0.1:9", WTF_CSRF_ENABLED=False)


def flight_form(app: Flask, **changes: str) -> FlightForm:
    data = {**VALID, **changes}
    with app.test_request_context(method="POST", data=data):
        form = FlightForm()
        form.carrier.choices = options([("", "-"), ("UA", "UA"), ("AA", "AA")])
        form.origin.choices = options([("", "-"), ("EWR", "EWR"), ("JFK", "JFK")])
        form.validate()
        return form


@pytest.mark.parametrize("value", [2460, 2400, -1, 1260, 99999])
def test_clock_times_rejected(value: int) -> None:
    assert not is_clock_time(value)


@pytest.mark.parametrize("value", [0, 2359, 1259, 5, 1345])
def test_clock_times_accepted(value: int) -> None:
    assert is_clock_time(value)


@pytest.mark.parametrize("value", ["2460", "2400", "-1", "1260"])
def test_form_rejects_bad_clock_time(form_app: Flask, value: str) -> None:
    form = flight_form(form_app, sched_dep_time=value, dep_time=value)
    assert form.sched_dep_time.errors
    assert form.dep_time.errors


@pytest.mark.parametrize("value", ["0", "2359"])
def test_form_accepts_good_clock_time(form_app: Flask, value: str) -> None:
    form = flight_form(form_app, sched_dep_time=value, arr_time=value)
    assert not form.errors, form.errors


def test_to_api_builds_flight_create_body(form_app: Flask) -> None:
    form = flight_form(form_app)
    assert not form.errors
    body = form.to_api()
    assert body["year"] == 2013 and body["month"] == 3 and body["day"] == 4
    assert body["dest"] == "LAX"
    assert body["dep_time"] is None and body["distance"] == 2454
    assert "date" not in body


def test_data_from_flight_round_trip() -> None:
    data = FlightForm.data_from_flight({"year": 2013, "month": 12, "day": 31, "carrier": "AA"})
    assert data["date"] == date(2013, 12, 31)
    assert data["carrier"] == "AA"


def test_backend_422_errors_land_on_fields(form_app: Flask) -> None:
    form = flight_form(form_app)
    unmatched = apply_backend_errors(
        form,
        [
            FieldProblem(field="carrier", message="unknown carrier 'ZZ'"),
            FieldProblem(field="day", message="not a real date"),
            FieldProblem(field="body.dest", message="unknown destination"),
            FieldProblem(field="hour", message="derived field"),
            FieldProblem(field="", message="general problem"),
        ],
    )
    assert form.carrier.errors == ["unknown carrier 'ZZ'"]
    assert form.date.errors == ["not a real date"]
    assert form.dest.errors == ["unknown destination"]
    assert unmatched == ["hour: derived field", "general problem"]


def test_search_form_rejects_bad_filters() -> None:
    form = SearchForm(
        MultiDict(
            {
                "dest": "toolong",
                "date_from": "2013-05-01",
                "date_to": "2013-04-01",
                "min_dep_delay": "abc",
            }
        )
    )
    form.origin.choices = options([("", "Any")])
    form.carrier.choices = options([("", "Any")])
    assert not form.validate()
    assert set(form.errors) == {"dest", "date_to", "min_dep_delay"}
