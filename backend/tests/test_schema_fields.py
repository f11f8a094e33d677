"""The flight's fields have one source, api/schemas.py; what is spelled out elsewhere (the SQL
of the writes, the demo CSV's layout, the PATCH body) is held to it here."""

from __future__ import annotations

import re

from api.db import queries
from api.db.lifecycle import DatabaseLifecycle, Phase, Step
from api.schemas import (
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    AirportRef,
    Flight,
    FlightCreate,
    FlightDetail,
    FlightPatch,
    Plane,
)

DERIVED = ("hour", "minute", "time_hour")  # computed by the server from the schedule


def test_the_client_fields_are_flight_create_split_by_required() -> None:
    assert set(REQUIRED_FIELDS) | set(OPTIONAL_FIELDS) == set(FlightCreate.model_fields)
    assert not set(REQUIRED_FIELDS) & set(OPTIONAL_FIELDS)
    assert all(FlightCreate.model_fields[name].is_required() for name in REQUIRED_FIELDS)
    assert "carrier" in REQUIRED_FIELDS and "dep_time" in OPTIONAL_FIELDS


def test_a_stored_flight_is_the_client_fields_plus_id_and_derived_ones() -> None:
    assert list(Flight.model_fields) == ["id", *FlightCreate.model_fields, *DERIVED]
    assert set(FlightPatch.model_fields) == set(FlightCreate.model_fields)
    assert not any(info.is_required() for info in FlightPatch.model_fields.values())


def test_every_flight_select_returns_the_api_fields() -> None:
    parts = re.split(r",(?![^()]*\))", queries.FLIGHT_COLUMNS)  # commas outside (...)
    selected = [part.strip().split(" AS ")[-1] for part in parts]
    assert selected == list(Flight.model_fields)
    for name in ("flight_get", "flight_list", "flight_insert_batch", "flight_update"):
        assert queries.FLIGHT_COLUMNS in queries.QUERIES[name], name


def test_the_reference_selects_return_every_detail_field() -> None:
    assert list(FlightDetail.model_fields) == [
        *Flight.model_fields, "origin_airport", "dest_airport", "plane",
    ]  # fmt: skip
    for name, key, model in (("airport_refs", "faa", AirportRef), ("plane_refs", "tailnum", Plane)):
        selected = re.search(r"SELECT (.*) FROM", queries.QUERIES[name])
        assert selected is not None, name
        assert selected.group(1).split(", ") == [key, *model.model_fields], name


def test_the_demo_csv_layout_has_the_flight_fields_in_order() -> None:
    names = re.findall(r"'(\w+)': '\w+'", queries._FLIGHTS_CSV_COLUMNS)
    assert names == list(Flight.model_fields)


def test_the_writes_store_every_client_field() -> None:
    stored = (*FlightCreate.model_fields, "hour", "minute")
    insert, update = queries.QUERIES["flight_insert_batch"], queries.QUERIES["flight_update"]
    for name in stored:
        assert re.search(rf"unnest\(\${name}::\w+\[\]\) AS {name}\b", insert), name
        assert re.search(rf"\b{name} = \${name}\b", update), name


def test_the_lifecycle_shows_each_step_and_hands_the_database_back_once() -> None:
    lifecycle = DatabaseLifecycle()
    assert lifecycle.step.status() == "opening the database file"
    assert lifecycle.database is None
    lifecycle.enter(Phase.REPLAYING_WAL, "4096 bytes")
    assert lifecycle.step == Step(Phase.REPLAYING_WAL, "4096 bytes")
    assert lifecycle.step.status() == "replaying the write-ahead log (4096 bytes)"
    assert lifecycle.shut_down() is None
    assert lifecycle.step.status() == "shutting down"
