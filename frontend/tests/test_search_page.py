"""Search page (count, sort headers, paging both ways, new filters) and the detail page's
times and names, against the stdlib fake backend (real HTTP, real httpx client)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fake_backend import FakeBackend, make_flight
from web.backend_client import Flight
from web.flight_times import departure_times


def api_queries(fake: FakeBackend) -> list[dict[str, str]]:
    return [q for m, p, q in fake.requests if (m, p) == ("GET", "/api/v1/flights")]


def test_search_shows_the_match_count(client: Any) -> None:
    html = client.get("/flights").get_data(as_text=True)
    assert "3 flights match" in html


def test_pinned_url_parameters_reach_the_api(client: Any, fake_backend: FakeBackend) -> None:
    url = "/flights?min_arr_delay=30&cancelled=true&hour=5&sort=arr_delay&order=desc&origin=JFK"
    html = client.get(url).get_data(as_text=True)
    assert api_queries(fake_backend)[-1] == {
        "min_arr_delay": "30", "cancelled": "true", "hour": "5", "sort": "arr_delay",
        "order": "desc", "origin": "JFK", "limit": "50",
    }  # fmt: skip
    assert "1 flight matches" in html
    # hour 0 is a value, not "any hour"
    client.get("/flights?hour=0")
    assert api_queries(fake_backend)[-1]["hour"] == "0"


def test_sort_headers_mark_the_sorted_column_and_reverse_it(client: Any) -> None:
    html = client.get("/flights?sort=dep_delay&order=desc&carrier=UA").get_data(as_text=True)
    sorted_th = re.findall(
        r'<th scope="col"[^>]*aria-sort="(\w+)"[^>]*>\s*<a[^>]*href="([^"]+)"', html
    )
    assert len(sorted_th) == 1
    state, href = sorted_th[0]
    assert state == "descending"
    # Its link sorts ascending (the default order, so left out), keeps the filters, no cursor.
    assert href == "/flights?carrier=UA&amp;sort=dep_delay"
    # Another column starts in its own order: the largest arrival delays first.
    assert 'href="/flights?carrier=UA&amp;sort=arr_delay&amp;order=desc"' in html
    assert "sorted by departure delay, descending" in html  # the caption


def test_default_sort_is_date_ascending(client: Any) -> None:
    html = client.get("/flights").get_data(as_text=True)
    assert re.search(r'aria-sort="ascending"[^>]*>\s*<a[^>]*href="/flights\?order=desc"', html)


def test_bad_sort_is_a_form_error_without_a_backend_call(
    client: Any, fake_backend: FakeBackend
) -> None:
    html = client.get("/flights?sort=tailnum&order=up").get_data(as_text=True)
    assert "Please correct the highlighted filters" in html
    assert html.count('aria-invalid="true"') == 2
    assert not api_queries(fake_backend)


def test_pager_first_previous_next(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import web.views.flights as flights_view

    monkeypatch.setattr(flights_view, "PAGE_SIZE", 2)
    first = client.get("/flights?sort=dest").get_data(as_text=True)
    assert "Previous page" not in first and "First page" not in first
    assert 'href="/flights?cursor=c2&amp;sort=dest" rel="next"' in first
    second = client.get("/flights?cursor=c2&sort=dest").get_data(as_text=True)
    assert 'href="/flights?cursor=p1&amp;sort=dest" rel="prev"' in second
    assert 'href="/flights?sort=dest">« First page' in second
    # Back on the first page through a cursor (no prev_cursor): no First or Previous link.
    fake_prev = client.get("/flights?cursor=p1&sort=dest").get_data(as_text=True)
    assert "First page" not in fake_prev and "Previous page" not in fake_prev


def test_every_result_cell_is_labelled_for_the_phone_layout(client: Any) -> None:
    html = client.get("/flights").get_data(as_text=True)
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    cells = re.findall(r"<t[dh]\b[^>]*>", body)
    assert cells and all("data-label=" in cell for cell in cells)
    headers = re.findall(r'<th scope="col"', html)
    assert len(headers) == len(cells) // 3  # one label per column, 3 flights


def test_detail_shows_local_and_utc_times_and_names(client: Any) -> None:
    html = client.get("/flights/1").get_data(as_text=True)
    # 05:15 at EWR on 1 January (EST) is 10:15 UTC; no raw ISO string, no hour : minute.
    assert "Tue 1 Jan 2013, 05:15" in html and "America/New_York" in html
    assert "10:15 UTC" in html and "UTC\u221205:00" in html
    assert "2013-01-01T10:00:00Z" not in html and "Hour : minute" not in html
    assert "Newark Liberty Intl (EWR)" in html
    # IAH is not in the fake's airports: the code and that the name is unknown.
    assert re.search(r"IAH <span[^>]*>\(name unknown", html)
    assert "BOEING 737-824, built 1999, 149 seats" in html


def test_detail_of_an_unknown_aircraft(client: Any, fake_backend: FakeBackend) -> None:
    fake_backend.flights[4] = make_flight(4, tailnum="N99999")
    assert "not in the aircraft list" in client.get("/flights/4").get_data(as_text=True)


def test_departure_times_in_summer_and_across_midnight_utc() -> None:
    # 21:30 at JFK on 4 July (EDT, UTC-4) is 01:30 UTC on 5 July.
    flight = make_flight(1, month=7, day=4, sched_dep_time=2130, hour=21, minute=30,
                         time_hour="2013-07-05T01:00:00Z")  # fmt: skip
    times = departure_times(Flight.model_validate(flight))
    assert times is not None
    assert times["local"] == "Thu 4 Jul 2013, 21:30"
    assert times["utc"] == "Fri 5 Jul 2013, 01:30 UTC"
    assert times["offset"] == "UTC\u221204:00"
    assert times["tzone"] is None  # no origin_airport in a plain flight
    assert departure_times(Flight.model_validate({**flight, "time_hour": "July"})) is None
    # a clock time that is no time of day (the API's HHMM rule is the backend's)
    assert departure_times(Flight.model_validate({**flight, "sched_dep_time": 2460})) is None
