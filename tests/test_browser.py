"""Browser test: headless Chromium (Debian's build, driven by Playwright) through search,
detail and edit, on the real stack. No JavaScript is needed by the pages; the browser proves
that the HTML forms, links, redirects, cookies and CSRF tokens work together."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import API_AUTH, Stack
from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = pytest.mark.timeout(300)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium tries to reach Google at start-up, which
# a closed network refuses, many times over.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_search_detail_and_edit(stack: Stack, page: Page) -> None:
    page.goto(stack.frontend.url + "/")
    expect(page.locator("body")).to_contain_text("336,776")

    page.goto(stack.frontend.url + "/flights")
    page.select_option("select[name=origin]", "LGA")
    page.select_option("select[name=carrier]", "DL")
    page.fill("input[name=date_from]", "2013-05-10")
    page.fill("input[name=date_to]", "2013-05-10")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() > 5
    first_link = rows.first.locator("a[href^='/flights/']").first
    href = first_link.get_attribute("href")
    assert href is not None
    flight_id = int(href.rsplit("/", 1)[1])
    first_link.click()

    expect(page).to_have_url(f"{stack.frontend.url}/flights/{flight_id}")
    expect(page.locator("main")).to_contain_text("LGA")
    expect(page.locator("main")).to_contain_text("Delta")

    page.get_by_role("link", name="Edit").click()
    expect(page).to_have_url(f"{stack.frontend.url}/flights/{flight_id}/edit")
    page.fill("input[name=arr_delay]", "123")
    page.fill("input[name=sched_dep_time]", "2461")  # impossible: shown beside the field
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#sched_dep_time")).to_have_attribute("aria-invalid", "true")
    stored = httpx.get(
        f"{stack.backend.url}/api/v1/flights/{flight_id}", headers=API_AUTH, timeout=10
    ).json()
    assert stored["arr_delay"] != 123  # the invalid form wrote nothing

    page.fill("input[name=sched_dep_time]", str(stored["sched_dep_time"]))
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(f"{stack.frontend.url}/flights/{flight_id}")
    expect(page.locator("main")).to_contain_text("123")
    stored = httpx.get(
        f"{stack.backend.url}/api/v1/flights/{flight_id}", headers=API_AUTH, timeout=10
    ).json()
    assert stored["arr_delay"] == 123


def test_dashboard_drill_down_to_the_matching_search(stack: Stack, page: Page) -> None:
    """The walk: dashboard -> a carrier's bar -> the search for that carrier (in the
    dashboard's origin and month) -> sorted by arrival delay -> the most delayed flight's
    detail; dashboard -> delay patterns -> an hour's bar -> the search for that hour;
    delay patterns -> a destination's table row -> the search for that destination.
    (The links' sort/order and hour/cancelled/min_arr_delay parameters are the search's own
    business; carrier, dest, origin and the dates are what these checks can see today.)"""
    page.goto(stack.frontend.url + "/?origin=JFK&month=3")
    bar = page.locator("a.bar-link[aria-label^='United Air Lines Inc.']")
    expect(bar).to_have_count(1)
    bar.click()
    expect(page).to_have_url(re.compile(r"/flights\?.*carrier=UA"))
    expect(page.locator("select[name=carrier]")).to_have_value("UA")
    expect(page.locator("select[name=origin]")).to_have_value("JFK")
    expect(page.locator("input[name=date_from]")).to_have_value("2013-03-01")
    expect(page.locator("input[name=date_to]")).to_have_value("2013-03-31")
    rows = page.locator("table tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() > 5
    assert all("UA" in text and "JFK" in text for text in rows.all_inner_texts())
    # The drill-down lands sorted worst first; the header turns it around and back, the
    # drill-down's filters kept.
    header = page.locator("th[aria-sort]")
    expect(header).to_contain_text("Arr. delay")
    expect(header).to_have_attribute("aria-sort", "descending")
    page.locator("th a.sort-link", has_text="Arr. delay").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("select[name=carrier]")).to_have_value("UA")
    expect(page.locator("input[name=date_to]")).to_have_value("2013-03-31")
    known = [d for d in delays(page) if d is not None]
    assert known and known == sorted(known)
    page.locator("th a.sort-link", has_text="Arr. delay").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    sorted_delays = delays(page)
    assert sorted_delays and sorted_delays == sorted(sorted_delays, reverse=True)  # type: ignore[type-var]
    assert sorted_delays[0] > known[-1]  # type: ignore[operator]
    # The first row's detail is that flight: UA from JFK in March 2013, the top delay.
    flight = open_first_result(stack, page)
    assert (flight["carrier"], flight["origin"], flight["year"], flight["month"]) == (
        "UA",
        "JFK",
        2013,
        3,
    )
    assert flight["arr_delay"] == sorted_delays[0]
    expect(page.locator("#origin-name")).to_contain_text("John F Kennedy Intl (JFK)")
    expect(page.locator("#dep-local")).to_contain_text("America/New_York")

    # The overview links to the delay patterns page with its filters; an hour's bar there
    # opens that hour's search.
    page.goto(stack.frontend.url + "/?origin=EWR")
    page.get_by_role("navigation", name="Dashboard pages").get_by_role(
        "link", name=re.compile("^Delay patterns")
    ).click()
    expect(page).to_have_url(re.compile(r"/delays\?origin=EWR$"))
    expect(page.locator("h1")).to_contain_text("Delay patterns")
    hour_bar = page.locator("#delay-by-hour-cap").locator("xpath=..").locator("a.bar-link")
    expect(hour_bar.first).to_be_visible()
    hour_bar.nth(3).click()
    expect(page).to_have_url(re.compile(r"/flights\?.*hour=\d+"))
    hour = int(re.search(r"hour=(\d+)", page.url).group(1))  # type: ignore[union-attr]
    expect(page.locator("select[name=origin]")).to_have_value("EWR")
    expect(page.locator("select[name=hour]")).to_have_value(str(hour))
    sched = page.locator("table.results tbody td[data-label='Sched. dep.']")
    expect(sched.first).to_be_visible()
    # Each result is scheduled to depart in that hour.
    assert all(t.strip().startswith(f"{hour:02d}:") for t in sched.all_inner_texts())

    page.goto(stack.frontend.url + "/delays")
    page.get_by_text("Busiest destinations as a table").click()
    row_link = page.get_by_role("region", name="Busiest destinations").get_by_role(
        "link", name=re.compile(r"^ORD\b")
    )
    row_link.click()
    expect(page).to_have_url(re.compile(r"/flights\?.*dest=ORD"))
    expect(page.locator("input[name=dest]")).to_have_value("ORD")
    expect(page.locator("input[name=date_from]")).to_have_value("2013-01-01")
    first = page.locator("table tbody tr").first
    expect(first).to_contain_text("ORD")


def delays(page: Page) -> list[int | None]:
    """The arrival delays of the results table, as numbers (None for a dash)."""
    texts = page.locator("table.results tbody td[data-label='Arr. delay']").all_inner_texts()
    return [None if t.strip() == "—" else int(t.strip().replace("\u2212", "-")) for t in texts]


def row_ids(page: Page) -> list[str | None]:
    links = page.locator("table.results tbody th[scope=row] a")
    return [links.nth(i).get_attribute("href") for i in range(links.count())]


def open_first_result(stack: Stack, page: Page) -> dict[str, Any]:
    """Click the first result's detail link; that flight as the API has it."""
    page.locator("table.results tbody th[scope=row] a").first.click()
    expect(page).to_have_url(re.compile(r"/flights/\d+$"))
    flight_id = int(page.url.rsplit("/", 1)[1])
    url = f"{stack.backend.url}/api/v1/flights/{flight_id}"
    flight: dict[str, Any] = httpx.get(url, headers=API_AUTH, timeout=10).json()
    return flight


def test_sorted_search_pages_both_ways_then_detail(stack: Stack, page: Page) -> None:
    page.goto(stack.frontend.url + "/flights")
    page.select_option("select[name=origin]", "JFK")
    page.fill("input[name=dest]", "SJU")  # San Juan: absent from airports.csv
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results-title")).to_contain_text("flights match")
    total = page.locator("#results-title").inner_text().split(" flights match")[0]
    assert int(total.replace(",", "")) > 100

    # Sort by arrival delay (its header starts descending), then page on and back.
    page.locator("th a.sort-link", has_text="Arr. delay").click()
    header = page.locator("th[aria-sort]")
    expect(header).to_have_count(1)
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(header).to_contain_text("Arr. delay")
    first = delays(page)
    assert len(first) == 50 and all(d is not None for d in first)
    assert first == sorted(first, reverse=True)  # type: ignore[type-var]
    first_ids = row_ids(page)

    page.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(re.compile(r"cursor=.*sort=arr_delay|sort=arr_delay.*cursor="))
    second = delays(page)
    assert second and max(d for d in second if d is not None) <= min(first)  # type: ignore[type-var]
    assert not set(row_ids(page)) & set(first_ids)
    page.get_by_role("link", name="Previous page").click()
    assert row_ids(page) == first_ids
    expect(page.locator("#results-title")).to_contain_text(f"{total} flights match")

    # The most delayed flight's detail: local and UTC times, names.
    flight = open_first_result(stack, page)
    hh, mm = divmod(flight["sched_dep_time"], 100)
    local = page.locator("#dep-local")
    expect(local).to_contain_text(f"{flight['day']} ")
    expect(local).to_contain_text(f"{hh:02d}:{mm:02d}")
    expect(local).to_contain_text("America/New_York")
    utc_hour = int(flight["time_hour"][11:13])
    expect(page.locator("#dep-utc")).to_contain_text(f"{utc_hour:02d}:{mm:02d} UTC")
    expect(page.locator("#origin-name")).to_contain_text("John F Kennedy Intl (JFK)")
    expect(page.locator("#dest-name")).to_contain_text("SJU")
    expect(page.locator("#dest-name")).to_contain_text("name unknown")
    main = page.locator("main")
    expect(main).not_to_contain_text(flight["time_hour"])  # no raw ISO string
    if flight["plane"]:
        expect(page.locator("#aircraft")).to_contain_text(str(flight["plane"]["manufacturer"]))


def test_results_fit_a_phone_and_the_favicon_answers(stack: Stack, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(stack.frontend.url + "/flights?origin=EWR&sort=dep_delay&order=desc")
        row = page.locator("table.results tbody tr").first
        expect(row).to_be_visible()
        # Every field of a result is on screen: no column beyond the 390 px width.
        for label in ("Date", "Route", "Dep. delay", "Arr. delay", "Tail"):
            box = row.locator(f"[data-label='{label}']").bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, label
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        icon = page.request.get(stack.frontend.url + "/favicon.ico")
        assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    finally:
        context.close()
