"""Shared fixtures: the demo data is loaded ONCE per session into a template DuckDB file;
tests that write get their own copy of that file (copying a closed DuckDB file is safe)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient

from api.db.lifecycle import lifecycle_of
from api.main import create_app, open_database
from api.observability import logging as obs_logging
from api.settings import Settings

# The key the test clients send (BACKEND_API_KEY); tests of the refusal send none.
API_KEY = "backend-test-api-key-0123456789-abcdefghij"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
PROBLEM = "application/problem+json"


T = TypeVar("T")


def eventually(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 10.0) -> T:
    """`read()` again (every 20 ms) until `done(value)` or `timeout` seconds passed; the last
    value, for the caller to assert on. For the stats answers after a write: their partials
    are recomputed in a background thread (api/db/cache.py, refresh_behind)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def new_flight(**fields: object) -> dict[str, object]:
    """The fewest fields a valid POST /api/v1/flights needs (a UA flight from JFK on
    2013-07-04), with `fields` replacing or adding any."""
    return {
        "year": 2013,
        "month": 7,
        "day": 4,
        "sched_dep_time": 915,
        "sched_arr_time": 1230,
        "carrier": "UA",
        "flight": 4242,
        "origin": "JFK",
        "dest": "LAX",
        **fields,
    }


@pytest.fixture(autouse=True)
def api_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`BACKEND_API_KEY` for tests that read the environment (`get_settings()`); a test of its
    absence deletes it."""
    monkeypatch.setenv("BACKEND_API_KEY", API_KEY)


@pytest.fixture(autouse=True)
def access_lines_written() -> Iterator[None]:
    """The access lines a test logged are written before it ends (the writer thread would
    write them within 50 ms, perhaps into the next test's captured output)."""
    yield
    obs_logging.flush_access_lines()


class ReadyTestClient(TestClient):
    """A TestClient whose `with` block starts once the database is open (or failed to open).

    The app opens its database in a background thread while it already serves the probes
    (api/main.py); tests of the API want the opened database.
    """

    def __enter__(self) -> ReadyTestClient:
        super().__enter__()
        lifecycle = lifecycle_of(self.app.state)  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while lifecycle.database is None and time.monotonic() < deadline:
            opener = next((t for t in threading.enumerate() if t.name == "database-opener"), None)
            if opener is None and lifecycle.database is None:
                break  # the opener ended without a database (e.g. locked): the test decides
            time.sleep(0.01)
        return self


def make_settings(path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_path": path,
        "load_demo_data": False,
        "db_lock_timeout_seconds": 2,
        "backend_api_key": API_KEY,
        # Tests see every write in the stats after one background statement, not 10 s later
        # (test_result_cache.py tests the interval itself).
        "stats_refresh_seconds": 0,
        # Tests count the statements a first answer runs (test_result_cache.py and
        # test_dashboard_stats.py test the warm-up itself).
        "stats_warm_up": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed database file with migrations applied and the demo data loaded."""
    path = tmp_path_factory.mktemp("template") / "app.db"
    open_database(make_settings(path, load_demo_data=True)).close()
    return path


def copy_db(template: Path, directory: Path) -> Path:
    target = directory / "app.db"
    shutil.copyfile(template, target)
    return target


@pytest.fixture(scope="session")
def client(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A client over a session-wide copy of the demo database: for tests that only read."""
    path = copy_db(template_db, tmp_path_factory.mktemp("readonly"))
    with ReadyTestClient(create_app(make_settings(path)), headers=AUTH) as test_client:
        yield test_client


@pytest.fixture
def writable_client(template_db: Path, tmp_path: Path) -> Iterator[TestClient]:
    """A client over this test's own copy of the demo database."""
    path = copy_db(template_db, tmp_path)
    with ReadyTestClient(create_app(make_settings(path)), headers=AUTH) as test_client:
        yield test_client
