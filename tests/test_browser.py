"""Browser test: headless Chromium (Debian's build, driven by Playwright) through search,
detail and edit, on the real stack. No JavaScript is needed by the pages; the browser proves
that the HTML forms, links, redirects, cookies and CSRF tokens work together."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

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


def delays(page: Page) -> list[int | None]:
    """The arrival delays of the results table, as numbers (None for a dash)."""
    texts = page.locator("table.results tbody td[data-label='Arr. delay']").all_inner_texts()
    return [None if t.strip() == "—" else int(t.strip().replace("\u2212", "-")) for t in texts]


def row_ids(page: Page) -> list[str | None]:
    links = page.locator("table.results tbody th[scope=row] a")
    return [links.nth(i).get_attribute("href") for i in range(links.count())]


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
    page.locator("table.results tbody th[scope=row] a").first.click()
    expect(page).to_have_url(re.compile(r"/flights/\d+$"))
    flight_id = int(page.url.rsplit("/", 1)[1])
    flight = httpx.get(
        f"{stack.backend.url}/api/v1/flights/{flight_id}", headers=API_AUTH, timeout=10
    ).json()
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
