"""Idempotency-Key on writes (api/idempotency.py): a repeat is applied once, answered the same."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.db.database import run_query
from api.db.lifecycle import lifecycle_of
from api.idempotency import KEY_TTL_SECONDS, parse_key, purge_expired
from tests.conftest import PROBLEM, new_flight

NEW_FLIGHT: dict[str, Any] = new_flight(flight=9343, dest="SJU")


def key() -> dict[str, str]:
    return {"Idempotency-Key": f'"{uuid.uuid4()}"'}


def count(client: TestClient, flight: int) -> int:
    with lifecycle_of(client.app.state).database.session() as cursor:  # type: ignore[attr-defined]
        return int(
            cursor.execute("SELECT count(*) FROM flights WHERE flight = ?", [flight]).fetchone()[0]
        )


def test_a_repeated_create_is_applied_once_and_answered_the_same(
    writable_client: TestClient,
) -> None:
    headers = key()
    first = writable_client.post("/api/v1/flights", json=NEW_FLIGHT, headers=headers)
    again = writable_client.post("/api/v1/flights", json=NEW_FLIGHT, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert count(writable_client, 9343) == 1
    # a new key is a new create
    other = writable_client.post("/api/v1/flights", json=NEW_FLIGHT, headers=key())
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert count(writable_client, 9343) == 2


def test_without_a_key_every_create_is_applied(writable_client: TestClient) -> None:
    for _ in range(2):
        assert writable_client.post("/api/v1/flights", json=NEW_FLIGHT).status_code == 201
    assert count(writable_client, 9343) == 2


def test_a_repeated_patch_replays_the_first_answer(writable_client: TestClient) -> None:
    flight_id = writable_client.post("/api/v1/flights", json=NEW_FLIGHT).json()["id"]
    headers = key()
    first = writable_client.patch(
        f"/api/v1/flights/{flight_id}", json={"dep_delay": 7}, headers=headers
    )
    assert first.status_code == 200 and first.json()["dep_delay"] == 7
    # someone else changes it meanwhile: the repeat must not undo that
    writable_client.patch(f"/api/v1/flights/{flight_id}", json={"dep_delay": 9})
    again = writable_client.patch(
        f"/api/v1/flights/{flight_id}", json={"dep_delay": 7}, headers=headers
    )
    assert again.status_code == 200 and again.json() == first.json()
    assert writable_client.get(f"/api/v1/flights/{flight_id}").json()["dep_delay"] == 9


def test_the_same_key_with_another_request_is_422(writable_client: TestClient) -> None:
    headers = key()
    assert (
        writable_client.post("/api/v1/flights", json=NEW_FLIGHT, headers=headers).status_code == 201
    )
    changed = writable_client.post(
        "/api/v1/flights", json={**NEW_FLIGHT, "flight": 9344}, headers=headers
    )
    assert changed.status_code == 422
    assert changed.headers["content-type"].startswith(PROBLEM)
    assert "different request" in changed.json()["detail"]
    assert count(writable_client, 9344) == 0


@pytest.mark.parametrize("value", ['"', '""', '"a b"', "x" * 200, '"unterminated', "a\\b"])
def test_a_malformed_key_is_400_and_writes_nothing(writable_client: TestClient, value: str) -> None:
    answer = writable_client.post(
        "/api/v1/flights", json=NEW_FLIGHT, headers={"Idempotency-Key": value}
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert count(writable_client, 9343) == 0


def test_parse_key_accepts_an_sf_string_and_a_bare_token() -> None:
    assert parse_key('"abc-123"') == "abc-123"
    assert parse_key("abc-123") == "abc-123"


def test_a_repeat_while_the_first_is_in_flight_is_409(writable_client: TestClient) -> None:
    """The first request is held inside its write (the group commit waits on a gate)."""
    headers = key()
    writes = writable_client.app.state.group_writes  # type: ignore[attr-defined]
    real_execute = writes.execute
    entered, release = threading.Event(), threading.Event()

    def slow_execute(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(10)
        return real_execute(*args, **kwargs)

    writes.execute = slow_execute
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(
                writable_client.post, "/api/v1/flights", json=NEW_FLIGHT, headers=headers
            )
            assert entered.wait(10)
            concurrent = writable_client.post("/api/v1/flights", json=NEW_FLIGHT, headers=headers)
            release.set()
            assert first.result(10).status_code == 201
    finally:
        writes.execute = real_execute
    assert concurrent.status_code == 409
    assert concurrent.headers["content-type"].startswith(PROBLEM)
    assert count(writable_client, 9343) == 1


def test_an_expired_key_is_a_new_request(writable_client: TestClient) -> None:
    headers = key()
    first = writable_client.post("/api/v1/flights", json=NEW_FLIGHT, headers=headers)
    database = lifecycle_of(writable_client.app.state).database  # type: ignore[attr-defined]
    with database.session() as cursor:
        cursor.execute(
            "UPDATE idempotency_keys SET created_at = created_at - ?", [KEY_TTL_SECONDS + 1]
        )
    again = writable_client.post("/api/v1/flights", json=NEW_FLIGHT, headers=headers)
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]
    with database.session() as cursor:
        purge_expired(cursor, now=time.time() + KEY_TTL_SECONDS + 1)
        assert (
            run_query(
                cursor, "idempotency_get", {"key": headers["Idempotency-Key"].strip('"')}
            ).first()
            is None
        )


def test_concurrent_creates_with_keys_each_store_their_own_answer(
    writable_client: TestClient,
) -> None:
    """Creates are written in groups (api/db/batch.py): each key gets its own row's answer."""
    keys = [key() for _ in range(16)]

    def create(i: int) -> Any:
        body = {**NEW_FLIGHT, "flight": 9500 + i}
        return writable_client.post("/api/v1/flights", json=body, headers=keys[i])

    with ThreadPoolExecutor(8) as pool:
        firsts = list(pool.map(create, range(16)))
        agains = list(pool.map(create, range(16)))
    for first, again in zip(firsts, agains, strict=True):
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
    for i in range(16):
        assert count(writable_client, 9500 + i) == 1
