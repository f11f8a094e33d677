"""The favicon: linked from every page, and /favicon.ico answered (no 404 per first visit)."""

from __future__ import annotations

from typing import Any


def test_favicon_ico_is_the_svg_icon(client: Any) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.get_data(as_text=True).startswith("<svg")
    assert "max-age=86400" in response.headers["Cache-Control"]


def test_pages_link_the_icon(client: Any) -> None:
    html = client.get("/flights").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    assert client.get("/static/favicon.svg").status_code == 200
