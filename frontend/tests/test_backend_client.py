from __future__ import annotations

import pytest

from tests.conftest import free_port
from tests.fake_backend import FakeBackend
from web.backend_client import (
    BackendClient,
    BackendError,
    BackendNotFound,
    BackendUnavailable,
    BackendValidationError,
)
from web.settings import Settings


def client_for(url: str) -> BackendClient:
    return BackendClient(Settings(BACKEND_URL=url, BACKEND_READ_TIMEOUT_SECONDS=2.0))


def test_typed_methods(fake_backend: FakeBackend) -> None:
    c = client_for(fake_backend.url)
    assert c.get_flight(1)["carrier"] == "UA"
    page = c.list_flights({"origin": "JFK", "dest": ""}, limit=10)
    assert [f["id"] for f in page["items"]] == [2] and page["next_cursor"] is None
    assert c.airlines()[0]["carrier"] == "AA"
    assert c.airports("origin")[0]["faa"] == "EWR"
    assert c.carrier_stats(origin="EWR")[0]["flights"] == 32729
    assert c.daily_stats()[0]["date"] == "2013-01-01"
    created = c.create_flight({"carrier": "AA", "flight": 7})
    assert c.update_flight(created["id"], {"flight": 8})["flight"] == 8
    c.delete_flight(created["id"])
    assert c.ready()["status"] == "ok"
    c.close()


def test_error_hierarchy(fake_backend: FakeBackend) -> None:
    c = client_for(fake_backend.url)
    with pytest.raises(BackendNotFound):
        c.get_flight(12345)
    with pytest.raises(BackendValidationError) as info:
        c.create_flight({"carrier": "ZZ"})
    assert info.value.errors == [{"field": "carrier", "message": "unknown carrier 'ZZ'"}]
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
