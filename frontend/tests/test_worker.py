"""The probe lane's routing rule (web/worker.py); tests/test_stalled_backend.py runs it for real."""

from __future__ import annotations

import pytest

from web.worker import is_probe


@pytest.mark.parametrize(
    "first_bytes",
    [b"GET /livez HTTP/1.1\r\n", b"HEAD /health HTTP/1.1", b"GET /readyz?x=1 HTTP/1.1",
     b"GET /metrics HTTP/1.0"],
)  # fmt: skip
def test_probes_take_the_probe_lane(first_bytes: bytes) -> None:
    assert is_probe(first_bytes)


@pytest.mark.parametrize(
    "first_bytes",
    [b"GET / HTTP/1.1", b"GET /livezz HTTP/1.1", b"POST /livez HTTP/1.1", b"GET /flights/1",
     b"GET /liv", b"", b"\x16\x03\x01"],
)  # fmt: skip
def test_everything_else_takes_the_page_pool(first_bytes: bytes) -> None:
    assert not is_probe(first_bytes)
