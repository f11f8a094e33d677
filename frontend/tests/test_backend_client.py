from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import free_port
from tests.fake_backend import FakeBackend, make_flight
from web.backend_client import (
    BackendClient,
    BackendError,
    BackendNotFound,
    BackendUnavailable,
    BackendValidationError,
    FieldProblem,
)
from web.settings import Settings


def client_for(url: str) -> BackendClient:
    return BackendClient(Settings(BACKEND_URL=url, BACKEND_READ_TIMEOUT_SECONDS=2.0))


def test_typed_methods(fake_backend: FakeBackend) -> None:
    c = client_for(fake_backend.url)
    assert c.get_flight(1).carrier == "UA"
    page = c.list_flights({"origin": "JFK", "dest": ""}, limit=10)
    assert [f.id for f in page.items] == [2] and page.next_cursor is None
    assert c.airlines()[0].carrier == "AA"
    assert c.airports("origin")[0].faa == "EWR"
    assert c.carrier_stats(origin="EWR")[0].flights == 32729
    assert c.daily_stats()[0].date == dt.date(2013, 1, 1)
    created = c.create_flight({"carrier": "AA", "flight": 7})
    assert c.update_flight(created.id, {"flight": 8}).flight == 8
    c.delete_flight(created.id)
    assert c.ready()["status"] == "ok"
    c.close()


def test_error_hierarchy(fake_backend: FakeBackend) -> None:
    c = client_for(fake_backend.url)
    with pytest.raises(BackendNotFound):
        c.get_flight(12345)
    with pytest.raises(BackendValidationError) as info:
        c.create_flight({"carrier": "ZZ"})
    assert info.value.errors == [FieldProblem(field="carrier", message="unknown carrier 'ZZ'")]
    fake_backend.status_override = 503
    with pytest.raises(BackendUnavailable):
        c.carrier_stats()
    fake_backend.status_override = 409
    with pytest.raises(BackendError) as err:
        c.carrier_stats()
    assert err.value.status_code == 409
    assert not isinstance(err.value, BackendUnavailable)
    assert issubclass(BackendUnavailable, BackendError)


def test_connection_refused_is_unavailable() -> None:
    c = client_for(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BackendUnavailable):
        c.airlines()
    with pytest.raises(BackendUnavailable, match="connection refused"):
        c.ready()


def test_failures_are_not_cached(fake_backend: FakeBackend) -> None:
    c = client_for(fake_backend.url)
    fake_backend.status_override = 500
    with pytest.raises(BackendUnavailable):
        c.airlines()
    fake_backend.status_override = None
    assert c.airlines()


# A flight's detail as the backend answers it (every reference part known).
PLANE = {"manufacturer": "BOEING", "model": "737-824", "year": 1999, "seats": 149}
DETAIL = {**make_flight(1), "origin_airport": {"name": "Newark Liberty Intl",
          "tzone": "America/New_York"}, "dest_airport": None, "plane": PLANE}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/api/v1/flights/1", {"id": 1, "carrier": "UA"}),  # fields missing
        ("/api/v1/flights/1", [1, 2]),  # not an object
        ("/api/v1/flights/1", make_flight(1)),  # a Flight, not a FlightDetail
        ("/api/v1/flights/1", {**DETAIL, "origin_airport": {"name": "Newark"}}),  # no tzone
        ("/api/v1/flights/1", {**DETAIL, "plane": {**PLANE, "seats": "many"}}),
        ("/api/v1/flights", {"items": [], "next_cursor": None, "prev_cursor": None}),  # total
        ("/api/v1/flights", {"items": [], "total": -1, "next_cursor": None, "prev_cursor": None}),
        ("/api/v1/airlines", {"items": [{"carrier": "AA", "name": None}]}),  # name is required
        ("/api/v1/stats/daily", {"items": [{"date": "yesterday", "flights": 1}]}),
        ("/api/v1/stats/carriers", {"rows": []}),
    ],
)
def test_an_answer_that_does_not_fit_the_model_is_a_bad_answer(
    fake_backend: FakeBackend, path: str, answer: object
) -> None:
    """The backend's answers are validated (pydantic models of its schemas): one that does
    not fit is BackendUnavailable (the 503 page), never a half-read dict."""
    fake_backend.answer_override[path] = answer
    c = client_for(fake_backend.url)
    call = {
        "/api/v1/flights/1": lambda: c.get_flight(1),
        "/api/v1/flights": lambda: c.list_flights({}),
        "/api/v1/airlines": c.airlines,
        "/api/v1/stats/daily": c.daily_stats,
        "/api/v1/stats/carriers": c.carrier_stats,
    }[path]
    with pytest.raises(BackendUnavailable, match=r"malformed \w+ from backend"):
        call()


def test_a_detail_is_read_with_its_reference_parts(fake_backend: FakeBackend) -> None:
    """The answer the cases above spoil, read as it is: nested models, attribute access."""
    fake_backend.answer_override["/api/v1/flights/1"] = DETAIL
    detail = client_for(fake_backend.url).get_flight(1)
    assert detail.origin_airport is not None
    assert (detail.origin_airport.name, detail.origin_airport.tzone) == (
        "Newark Liberty Intl",
        "America/New_York",
    )
    assert detail.dest_airport is None
    assert detail.plane is not None and (detail.plane.model, detail.plane.seats) == ("737-824", 149)


def test_answers_with_unknown_values_are_read_as_the_backend_sends_them(
    fake_backend: FakeBackend,
) -> None:
    """What the backend's schema allows to be null is None here too (the hand-written types
    had drifted: a carrier missing from airlines has no name; airports lack coordinates)."""
    fake_backend.answer_override["/api/v1/stats/carriers"] = {
        "items": [{"carrier": "ZZ", "name": None, "flights": 1, "cancelled": 1, "arrived": 0,
                   "mean_arr_delay": None, "p95_arr_delay": None, "on_time_share": None}]
    }  # fmt: skip
    fake_backend.answer_override["/api/v1/airports"] = {
        "items": [{"faa": "XXX", "name": "Nowhere", "lat": None, "lon": None, "alt": None,
                   "tz": None, "dst": None, "tzone": None, "added_later": 1}]
    }  # fmt: skip
    c = client_for(fake_backend.url)
    assert c.carrier_stats()[0].name is None
    airport = c.airports()[0]
    assert (airport.faa, airport.lat, airport.tzone) == ("XXX", None, None)
