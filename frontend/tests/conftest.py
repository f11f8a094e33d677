from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from tests.fake_backend import FakeBackend
from web import create_app
from web.observability import logging as obs_logging
from web.settings import Settings


def free_port() -> int:
    """A local TCP port that was free a moment ago (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def access_lines_written() -> Iterator[None]:
    """The access lines a test logged are written before it ends (the writer thread would
    write them within 50 ms, perhaps into the next test's captured output)."""
    yield
    obs_logging.flush_access_lines()


@pytest.fixture
def fake_backend() -> Iterator[FakeBackend]:
    with FakeBackend() as fake:
        yield fake


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        values: dict[str, Any] = {"APP_ENV": "test", "BACKEND_READ_TIMEOUT_SECONDS": 2.0}
        values.update(overrides)
        app = create_app(Settings(**values))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["backend"].close()


@pytest.fixture
def app(make_app: Callable[..., Flask], fake_backend: FakeBackend) -> Flask:
    """App against the fake backend, CSRF off so form tests can post plain data."""
    return make_app(BACKEND_URL=fake_backend.url, WTF_CSRF_ENABLED=False)


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


class Clock:
    """A monotonic clock for unit tests (seconds): reads `now`, which the test advances."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
