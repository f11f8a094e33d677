from __future__ import annotations

import re

from tests.fake_backend import FakeBackend


def test_post_without_token_is_rejected(make_app, fake_backend: FakeBackend) -> None:  # type: ignore[no-untyped-def]
    app = make_app(BACKEND_URL=fake_backend.url)  # CSRF enabled (the default)
    client = app.test_client()
    response = client.post("/flights/1/delete", data={})
    assert response.status_code == 400
    assert "This form expired" in response.get_data(as_text=True)
    assert 1 in fake_backend.flights
    response = client.post("/flights/new", data={"carrier": "UA"})
    assert response.status_code == 400
    assert not any(m == "POST" for m, _, _ in fake_backend.requests)


def test_post_with_token_is_accepted(make_app, fake_backend: FakeBackend) -> None:  # type: ignore[no-untyped-def]
    app = make_app(BACKEND_URL=fake_backend.url)
    client = app.test_client()
    page = client.get("/flights/1/delete").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, page
    response = client.post("/flights/1/delete", data={"csrf_token": token.group(1)})
    assert response.status_code == 303
    assert 1 not in fake_backend.flights


def test_health_endpoints_need_no_token(make_app, fake_backend: FakeBackend) -> None:  # type: ignore[no-untyped-def]
    client = make_app(BACKEND_URL=fake_backend.url).test_client()
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200
