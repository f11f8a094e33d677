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


def test_dashboard_drill_down_to_the_matching_search(stack: Stack, page: Page) -> None:
    """Dashboard -> a carrier's bar -> the search for that carrier (in the dashboard's origin
    and month); dashboard -> a destination's table row -> the search for that destination.
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

    page.goto(stack.frontend.url + "/")
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
