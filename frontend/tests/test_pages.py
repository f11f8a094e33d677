"""Rendering tests against the stdlib fake backend (real HTTP, real httpx client)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from tests.fake_backend import FakeBackend

FORM = {
    "date": "2013-06-15", "carrier": "UA", "flight": "42", "tailnum": "N12345",
    "origin": "JFK", "dest": "sfo", "sched_dep_time": "730", "sched_arr_time": "1045",
    "dep_time": "735", "arr_time": "1050", "dep_delay": "5", "arr_delay": "5",
    "air_time": "330", "distance": "2586",
}  # fmt: skip


def test_dashboard(client: Any, fake_backend: FakeBackend) -> None:
    response = client.get("/?origin=JFK&month=3")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "91,394" in html  # 32,729 + 58,665 flights
    assert "1,322" in html  # cancelled
    assert "%" in html and " min" in html
    assert html.count("<svg") == 2
    assert "<title" in html and 'role="img"' in html
    assert 'class="highlight"' in html  # March shaded
    assert (
        "GET",
        "/api/v1/stats/carriers",
        {"origin": "JFK", "month": "3"},
    ) in fake_backend.requests
    assert "<script" not in html and "http://" not in html.split("</head>")[0]


def test_dashboard_ignores_unknown_filter(client: Any) -> None:
    response = client.get("/?origin=ZZZ&month=13")
    assert response.status_code == 200
    assert "Unknown filter value" in response.get_data(as_text=True)


def test_search_and_pagination(client: Any, app: Any, fake_backend: FakeBackend) -> None:
    import web.views.flights as flights_view

    old = flights_view.PAGE_SIZE
    flights_view.PAGE_SIZE = 2
    try:
        html = client.get("/flights").get_data(as_text=True)
        assert "UA</abbr> 1545" in html
        assert "Cancelled" in html
        assert "cursor=c2" in html and "Next page" in html
        assert "First page" not in html
        html = client.get("/flights?cursor=c2").get_data(as_text=True)
        assert "First page" in html and "Next page" not in html
    finally:
        flights_view.PAGE_SIZE = old


def test_search_filters_carried_in_links(client: Any, fake_backend: FakeBackend) -> None:
    html = client.get("/flights?origin=EWR&dest=iah").get_data(as_text=True)
    assert ("GET", "/api/v1/flights", {"origin": "EWR", "dest": "IAH", "limit": "50"}) in (
        fake_backend.requests
    )
    assert "No flights match" not in html


def test_search_bad_filters_show_message(client: Any, fake_backend: FakeBackend) -> None:
    response = client.get("/flights?date_from=yesterday&min_dep_delay=abc&dest=12")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Please correct the highlighted filters" in html
    assert 'aria-invalid="true"' in html
    assert not any(p == "/api/v1/flights" for _, p, _ in fake_backend.requests)


def test_search_stale_cursor(client: Any) -> None:
    html = client.get("/flights?cursor=garbage").get_data(as_text=True)
    assert "no longer valid" in html


def test_detail(client: Any) -> None:
    html = client.get("/flights/2").get_data(as_text=True)
    assert "American Airlines Inc." in html
    assert "Cancelled" in html
    assert "/flights/2/edit" in html and "/flights/2/delete" in html


def test_unknown_flight_is_404(client: Any) -> None:
    response = client.get("/flights/999")
    assert response.status_code == 404
    assert "no such flight" in response.get_data(as_text=True)


def test_create_redirects_with_flash(client: Any, fake_backend: FakeBackend) -> None:
    response = client.post("/flights/new", data=FORM)
    assert response.status_code == 303
    new_id = max(fake_backend.flights)
    assert response.headers["Location"].endswith(f"/flights/{new_id}")
    assert fake_backend.flights[new_id]["dest"] == "SFO"
    assert fake_backend.flights[new_id]["year"] == 2013
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "UA 42 created" in html


def test_create_local_validation_errors(client: Any, fake_backend: FakeBackend) -> None:
    response = client.post("/flights/new", data={**FORM, "sched_dep_time": "2460"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'aria-describedby="sched_dep_time-error"' in html
    assert 'id="sched_dep_time-error"' in html
    assert not any(m == "POST" for m, _, _ in fake_backend.requests)


def test_create_maps_backend_422(client: Any) -> None:
    response = client.post("/flights/new", data={**FORM, "date": "2013-02-28", "dest": "XXX"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "unknown destination &#39;XXX&#39;" in html
    assert 'aria-describedby="dest-hint dest-error"' in html
    response = client.post("/flights/new", data={**FORM, "flight": "9999"})
    assert "flight 9999 is reserved" in response.get_data(as_text=True)


def test_edit_patches_changed_fields_only(client: Any, fake_backend: FakeBackend) -> None:
    form_html = client.get("/flights/1/edit").get_data(as_text=True)
    assert 'value="2013-01-01"' in form_html and 'value="N14228"' in form_html
    data = {**FORM, "date": "2013-01-01", "carrier": "UA", "flight": "1545", "tailnum": "N14228",
            "origin": "EWR", "dest": "IAH", "sched_dep_time": "515", "sched_arr_time": "819",
            "dep_time": "517", "arr_time": "845", "dep_delay": "2", "arr_delay": "26",
            "air_time": "227", "distance": "1400"}  # fmt: skip
    response = client.post("/flights/1/edit", data=data)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/flights/1")
    assert fake_backend.requests[-1] == ("PATCH", "/api/v1/flights/1",
                                         {"arr_time": 845, "arr_delay": 26})  # fmt: skip


def test_delete_confirmation_flow(client: Any, fake_backend: FakeBackend) -> None:
    html = client.get("/flights/3/delete").get_data(as_text=True)
    assert "Are you sure" in html
    assert 3 in fake_backend.flights
    response = client.post("/flights/3/delete")
    assert response.status_code == 303 and response.headers["Location"].endswith("/flights")
    assert 3 not in fake_backend.flights
    assert "deleted" in client.get("/flights").get_data(as_text=True)
    assert client.post("/flights/3/delete").status_code == 404


def test_own_404_and_405(client: Any) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True)
    response = client.delete("/flights")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_unexpected_error_is_plain_500(app: Any) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in html and "Traceback" not in html


def test_security_headers(client: Any) -> None:
    response = client.get("/livez")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_headline_weights_carrier_figures_by_arrived_flights() -> None:
    from web.backend_client import CarrierStats
    from web.views.dashboard import headline

    rows = [
        {"carrier": "AA", "name": "A", "flights": 10, "cancelled": 2, "arrived": 6,
         "mean_arr_delay": 10.0, "p95_arr_delay": 50.0, "on_time_share": 0.5},
        {"carrier": "UA", "name": "U", "flights": 20, "cancelled": 0, "arrived": 2,
         "mean_arr_delay": 2.0, "p95_arr_delay": 9.0, "on_time_share": 1.0},
    ]  # fmt: skip
    figures = headline([CarrierStats(**row) for row in rows])
    assert figures["flights"] == 30
    assert figures["cancelled"] == 2
    # (10*6 + 2*2) / 8: the base is flights with a known arrival delay, not departed flights
    assert figures["mean_arr_delay"] == pytest.approx(8.0)
    assert figures["on_time_share"] == pytest.approx((0.5 * 6 + 1.0 * 2) / 8)


def test_edit_does_not_revert_a_concurrent_change(client: Any, fake_backend: FakeBackend) -> None:
    """Regression (review): the diff was taken against a fresh copy of the flight at POST
    time, so a field someone else changed after this form was opened was sent back with the
    old value shown here, silently undoing their change."""
    form_html = client.get("/flights/1/edit").get_data(as_text=True)
    seen = re.search(r'name="seen" type="hidden" value="([^"]*)"', form_html)
    assert seen, "the edit form carries the values it showed"
    fake_backend.flights[1]["dep_delay"] = 99  # another user saves meanwhile
    data = {**FORM, "date": "2013-01-01", "carrier": "UA", "flight": "1545", "tailnum": "N14228",
            "origin": "EWR", "dest": "IAH", "sched_dep_time": "515", "sched_arr_time": "819",
            "dep_time": "517", "arr_time": "830", "dep_delay": "2", "arr_delay": "30",
            "air_time": "227", "distance": "1400",
            "seen": html.unescape(seen.group(1))}  # fmt: skip
    response = client.post("/flights/1/edit", data=data)
    assert response.status_code == 303
    # only what this user changed; dep_delay (2 in the form, as it was shown) is not sent
    assert fake_backend.requests[-1] == ("PATCH", "/api/v1/flights/1", {"arr_delay": 30})
    assert fake_backend.flights[1]["dep_delay"] == 99


def test_a_form_carries_one_idempotency_key_for_its_writes(
    client: Any, fake_backend: FakeBackend
) -> None:
    """The key is rendered into the form; the write sends it (an sf-string); a re-submit of
    the same form sends the same key, a newly rendered form another one."""
    html = client.get("/flights/new").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([0-9a-f-]{36})"', html)
    assert key is not None, html
    for _ in range(2):
        assert (
            client.post("/flights/new", data={**FORM, "idempotency_key": key[1]}).status_code == 303
        )
    sent = [h.get("idempotency-key") for h in fake_backend.headers_for("/api/v1/flights")
            if h.get("idempotency-key")]  # fmt: skip
    assert sent == [f'"{key[1]}"'] * 2
    other = re.search(
        r'name="idempotency_key" type="hidden" value="([0-9a-f-]{36})"',
        client.get("/flights/new").get_data(as_text=True),
    )
    assert other is not None and other[1] != key[1]
    # a form without the field (or a tampered value) still writes, with a fresh key
    assert client.post("/flights/new", data={**FORM, "idempotency_key": "x"}).status_code == 303


def test_a_malformed_backend_answer_is_the_503_page_not_a_500(
    client: Any, fake_backend: FakeBackend
) -> None:
    fake_backend.answer_override["/api/v1/flights/1"] = {"id": 1, "carrier": 7}
    response = client.get("/flights/1")
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.get_data(as_text=True)


def test_a_carrier_without_a_name_is_shown_by_its_code(
    client: Any, fake_backend: FakeBackend
) -> None:
    fake_backend.answer_override["/api/v1/stats/carriers"] = {
        "items": [{"carrier": "ZZ", "name": None, "flights": 5, "cancelled": 0, "arrived": 5,
                   "mean_arr_delay": 1.0, "p95_arr_delay": 2.0, "on_time_share": 1.0}]
    }  # fmt: skip
    page = client.get("/").get_data(as_text=True)
    assert "ZZ" in page and "None" not in page
