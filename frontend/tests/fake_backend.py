"""A tiny real HTTP server speaking a small subset of the backend API (docs/api.md).

Stdlib only, run in a thread; good enough to exercise the frontend's real httpx client.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

AIRLINES = [{"carrier": "AA", "name": "American Airlines Inc."},
            {"carrier": "UA", "name": "United Air Lines Inc."}]  # fmt: skip
ORIGINS = [
    {"faa": code, "name": name, "lat": 40.0, "lon": -74.0, "alt": 10, "tz": -5, "dst": "A",
     "tzone": "America/New_York"}
    for code, name in (("EWR", "Newark Liberty Intl"), ("JFK", "John F Kennedy Intl"),
                       ("LGA", "La Guardia"))
]  # fmt: skip
# The detail's airport references (IAH and MIA are unknown here, as real destinations can be).
AIRPORT_REFS = {a["faa"]: {"name": a["name"], "tzone": a["tzone"]} for a in ORIGINS}
PLANES = {"N14228": {"manufacturer": "BOEING", "model": "737-824", "year": 1999, "seats": 149}}
CARRIER_STATS = [
    {"carrier": "AA", "name": "American Airlines Inc.", "flights": 32729, "cancelled": 636,
     "arrived": 31947, "mean_arr_delay": 0.364, "p95_arr_delay": 80.0, "on_time_share": 0.83},
    {"carrier": "UA", "name": "United Air Lines Inc.", "flights": 58665, "cancelled": 686,
     "arrived": 57782, "mean_arr_delay": 3.558, "p95_arr_delay": 95.0, "on_time_share": 0.79},
]  # fmt: skip
DAILY = [
    {"date": f"2013-{m:02d}-{d:02d}", "flights": 800 + (m * 7 + d) % 200, "mean_dep_delay": 12.5,
     "mean_arr_delay": float((m * 5 + d) % 30 - 8)}
    for m in range(1, 13) for d in (1, 10, 20)
]  # fmt: skip
HOURS = [
    {"hour": h, "flights": 1000 + h, "cancelled": h, "arrived": 990, "mean_dep_delay": h - 5.0,
     "mean_arr_delay": h * 1.5 - 10, "on_time_share": 0.8}
    for h in range(5, 24)
]  # fmt: skip
DESTINATIONS = [
    {"dest": "ORD", "name": "Chicago Ohare Intl", "flights": 17283, "cancelled": 641,
     "arrived": 16566, "mean_arr_delay": 5.9, "on_time_share": 0.767},
    {"dest": "BQN", "name": None, "flights": 896, "cancelled": 6, "arrived": 888,
     "mean_arr_delay": 8.2, "on_time_share": 0.7},
]  # fmt: skip
WEATHER = [
    {"measure": "precip", "lower": 0.0, "upper": 0.01, "flights": 312218, "cancelled": 6311,
     "cancelled_share": 0.02, "mean_dep_delay": 11.4, "mean_arr_delay": 5.1},
    {"measure": "precip", "lower": 0.3, "upper": None, "flights": 799, "cancelled": 72,
     "cancelled_share": 0.09, "mean_dep_delay": 46.8, "mean_arr_delay": 53.7},
    {"measure": "visib", "lower": 1.0, "upper": 3.0, "flights": 9163, "cancelled": 768,
     "cancelled_share": 0.084, "mean_dep_delay": 25.4, "mean_arr_delay": 29.5},
]  # fmt: skip


def make_flight(fid: int, **over: Any) -> dict[str, Any]:
    flight = {
        "id": fid, "year": 2013, "month": 1, "day": 1, "dep_time": 517, "sched_dep_time": 515,
        "dep_delay": 2, "arr_time": 830, "sched_arr_time": 819, "arr_delay": 11,
        "carrier": "UA", "flight": 1545, "tailnum": "N14228", "origin": "EWR", "dest": "IAH",
        "air_time": 227, "distance": 1400, "hour": 5, "minute": 15,
        "time_hour": "2013-01-01T10:00:00Z",
    }  # fmt: skip
    flight.update(over)
    return flight


class FakeBackend:
    """State plus a server. ``status_override`` forces every API answer to that status.

    ``received`` records the method, path and headers of every request.
    """

    def __init__(self, port: int = 0) -> None:
        self.flights: dict[int, dict[str, Any]] = {
            1: make_flight(1),
            2: make_flight(2, carrier="AA", flight=1141, dep_time=None, arr_time=None,
                           dep_delay=None, arr_delay=None, air_time=None, origin="JFK",
                           dest="MIA"),
            3: make_flight(3, day=2),
        }  # fmt: skip
        self.status_override: int | None = None
        # The /stats/hours answer (a test may break it to see a malformed answer refused).
        self.hours: list[Any] = [dict(h) for h in HOURS]
        self.daily: list[Any] = [dict(d) for d in DAILY]
        # path -> body answered with 200 instead of the real one (e.g. a malformed answer)
        self.answer_override: dict[str, Any] = {}
        self.requests: list[tuple[str, str, Any]] = []
        # (method, path, headers with lower-case names) of every request, e.g. to check that
        # X-Request-ID and traceparent crossed the hop.
        self.received: list[tuple[str, str, dict[str, str]]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeBackend:
        self.thread.start()
        return self

    def headers_for(self, path: str) -> list[dict[str, str]]:
        """Headers of every request received for ``path`` (lower-case names), oldest first."""
        return [headers for _, p, headers in self.received if p == path]

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- request handling -------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, query if method == "GET" else body))
        if path == "/livez":
            return 200, {"status": "ok"}
        if path == "/readyz":
            return 200, {"status": "ok", "checks": {"database": "ok"}}
        if self.status_override is not None:
            return self.status_override, problem(self.status_override, path)
        if path in self.answer_override:
            return 200, self.answer_override[path]
        if path == "/api/v1/airlines":
            return 200, {"items": AIRLINES}
        if path == "/api/v1/airports":
            return 200, {"items": ORIGINS}
        if path == "/api/v1/stats/carriers":
            return 200, {"items": CARRIER_STATS}
        if path == "/api/v1/stats/daily":
            return 200, {"items": self.daily}
        if path == "/api/v1/stats/hours":
            return 200, {"items": self.hours}
        if path == "/api/v1/stats/destinations":
            return 200, {"items": DESTINATIONS}
        if path == "/api/v1/stats/weather":
            return 200, {"items": WEATHER}
        if path == "/api/v1/flights" and method == "GET":
            return self.list_flights(query)
        if path == "/api/v1/flights" and method == "POST":
            errors = validate(body)
            if errors:
                return 422, problem(422, path, errors)
            fid = max(self.flights) + 1
            self.flights[fid] = make_flight(fid, **body)
            return 201, self.flights[fid]
        match = re.fullmatch(r"/api/v1/flights/(\d+)", path)
        if match:
            fid = int(match.group(1))
            if fid not in self.flights:
                return 404, problem(404, path)
            if method == "GET":
                return 200, self.detail(self.flights[fid])
            if method == "PATCH":
                errors = validate({**self.flights[fid], **body})
                if errors:
                    return 422, problem(422, path, errors)
                self.flights[fid].update(body)
                return 200, self.flights[fid]
            if method == "DELETE":
                del self.flights[fid]
                return 204, None
        return 404, problem(404, path)

    def detail(self, flight: dict[str, Any]) -> dict[str, Any]:
        """GET /flights/{id}: the flight with its reference data (IAH and MIA unknown here)."""
        plane = PLANES.get(flight.get("tailnum") or "")
        return {**flight, "origin_airport": AIRPORT_REFS.get(flight["origin"]),
                "dest_airport": AIRPORT_REFS.get(flight["dest"]), "plane": plane}  # fmt: skip

    def list_flights(self, query: dict[str, str]) -> tuple[int, Any]:
        if "min_dep_delay" in query and not re.fullmatch(r"-?\d+", query["min_dep_delay"]):
            errors = [{"field": "min_dep_delay", "message": "not an integer"}]
            return 422, problem(422, "/api/v1/flights", errors)
        if query.get("cursor") not in (None, "c2", "p1"):
            return 422, problem(422, "/api/v1/flights", [{"field": "cursor", "message": "bad"}])
        items = sorted(self.flights.values(), key=lambda f: f["id"])
        if query.get("origin"):
            items = [f for f in items if f["origin"] == query["origin"]]
        if query.get("cancelled") == "true":
            items = [f for f in items if f["dep_time"] is None]
        limit = int(query.get("limit", 50))
        if query.get("cursor") == "c2":
            page = {"items": items[limit:], "next_cursor": None, "prev_cursor": "p1"}
            return 200, {**page, "total": len(items)}
        next_cursor = "c2" if len(items) > limit else None
        page = {"items": items[:limit], "next_cursor": next_cursor, "prev_cursor": None}
        return 200, {**page, "total": len(items)}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                url = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.received.append((self.command, url.path, headers))
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, payload = fake.handle(self.command, url.path, query, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                ctype = "application/problem+json" if status >= 400 else "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # silence test output
                pass

        return Handler


def validate(body: dict[str, Any]) -> list[dict[str, str]]:
    """A few of the real backend's rules, enough to produce realistic 422 bodies."""
    errors = []
    if body.get("carrier") not in {a["carrier"] for a in AIRLINES}:
        errors.append({"field": "carrier", "message": f"unknown carrier {body.get('carrier')!r}"})
    if body.get("day") == 31 and body.get("month") == 2:
        errors.append({"field": "day", "message": "not a real date"})
    if body.get("dest") == "XXX":
        errors.append({"field": "dest", "message": "unknown destination 'XXX'"})
    if body.get("flight") == 9999:
        errors.append({"field": "", "message": "flight 9999 is reserved"})
    return errors


def problem(status: int, instance: str, errors: list[dict[str, str]] | None = None) -> Any:
    body: dict[str, Any] = {"type": "about:blank", "title": f"HTTP {status}", "status": status,
                            "detail": f"status {status}", "instance": instance}  # fmt: skip
    if errors is not None:
        body["errors"] = errors
    return body
