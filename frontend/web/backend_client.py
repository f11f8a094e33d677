"""The one place the frontend talks to the backend API (``docs/api.md``, base ``BACKEND_URL``).

Every view goes through :class:`BackendClient`. It owns a per-process ``httpx.Client`` that is
created lazily on first use, so a gunicorn master never holds sockets or pool state that
forked workers would share; if the process id changes (fork after use) a fresh client is made.

Errors are translated into one small hierarchy so views can decide what to show:

- :class:`BackendUnavailable`: connect error, timeout, 5xx, malformed response -> 503 page.
- :class:`BackendNotFound`: 404 -> 404 page.
- :class:`BackendValidationError`: 422, with the problem body's ``errors`` list.
- :class:`BackendError`: base class; any other unexpected status (e.g. 409).

Telemetry: the httpx client is wrapped in OpenTelemetry's transport, so every call is a CLIENT
span (child of the current Flask server span) and carries ``traceparent``/``baggage``; an event
hook adds the current ``X-Request-ID``; each call is timed into
``backend_request_duration_seconds`` by the *backend's route template* (each method passes it
explicitly, never the raw path). Readiness calls are never traced (probes are not traced).

Retries (a rolling deploy: two backends behind one name, one of them waiting for the database
or stopping): an idempotent call (GET/HEAD, or a write sent with an ``Idempotency-Key``) that
got 503, a refused connection or a connection the backend closed or reset is sent again, on
a new connection (the backend's not-ready 503 closes its connection; httpx drops broken ones),
up to ``RETRY_ATTEMPTS`` times in all with a short jittered exponential back-off, only while
the page's budget, or the longer ``BACKEND_RETRY_WINDOW_SECONDS`` from the page's arrival,
leaves time for another try, and never while the circuit is open. A timeout
is never retried: the budget is spent, so a stalled backend costs pages what it did before.
The breaker counts the call once, by its final outcome. tenacity runs the loop.

Every call passes a per-process circuit breaker (web/circuit_breaker.py): after
``BACKEND_CIRCUIT_FAILURES`` calls in a row without an answer (or with 502/503/504), calls fail
at once for ``BACKEND_CIRCUIT_RESET_SECONDS``, then one trial call decides. A page waits for
the backend at most its budget in all (web/budget.py: BACKEND_READ_TIMEOUT_SECONDS, 0.8 s,
while the backend answers quickly; more, up to BACKEND_MAX_TIMEOUT_SECONDS, while it was
recently slower), counted from when the request arrived at the worker (web/worker.py). So a
stalled backend costs the first few pages of each worker about a second; the rest answer
503 in milliseconds. httpx drops failed connections from its pool, so the frontend recovers
by itself as soon as the backend answers again.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, cast

import httpx
import structlog
from opentelemetry.instrumentation.httpx import SyncOpenTelemetryTransport
from opentelemetry.instrumentation.utils import suppress_instrumentation
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_any,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from web.budget import Budget
from web.circuit_breaker import CircuitBreaker, CircuitOpen, State
from web.observability import backend_calls, tracing
from web.observability.backend_calls import URL_TEMPLATE, name_client_span
from web.observability.requests import REQUEST_ID_HEADER, current_request_id
from web.settings import Settings
from web.worker import request_arrived_at

logger = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"
# Reference data (airlines, airports) changes only with a data reload; a short in-process cache
# saves a backend round trip on every page. Only successful answers are cached.
REFERENCE_CACHE_SECONDS = 300.0
# Backend route templates with parameters (metric labels; docs/api.md spells them like this).
FLIGHT_ROUTE = f"{API_PREFIX}/flights/{{flight_id}}"
READINESS_ROUTE = "/readyz"
# Answers that say the backend cannot serve at all (not this request's own fault): like no
# answer, they count towards opening the circuit.
CIRCUIT_FAILURE_STATUSES = frozenset({502, 503, 504})
# A call with less time left in its page's budget is not worth making (seconds).
MIN_CALL_SECONDS = 0.05
# Retries of idempotent calls (module doc): attempts in all, and the jittered exponential
# back-off between them (seconds: random up to 0.05, 0.1, 0.2, ... at most 0.25). Enough
# attempts to span BACKEND_RETRY_WINDOW_SECONDS (3 s): time, not the count, is the bound.
RETRY_ATTEMPTS = 30
RETRY_BACKOFF_SECONDS = 0.05
RETRY_MAX_BACKOFF_SECONDS = 0.25
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
# No answer at all, or a connection the other side refused, closed or reset: the request was
# not answered, and a new connection may reach a backend that can serve it.
RETRY_ERRORS = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
RETRY_STATUSES = frozenset({503})


class ApiModel(BaseModel):
    """A backend answer (the backend's own schema of the same name, api/schemas.py; the
    whole-system test tests/test_api_models.py holds the two to each other). Validated from
    the response body by :func:`_parse`; a body that does not fit is a bad answer
    (:class:`BackendUnavailable`). Frozen: cached answers are shared across threads. Unknown
    fields are ignored, so a backend that adds one does not break a frontend that is older."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Flight(ApiModel):
    """A flight as returned by the backend (nycflights13 column names plus ``id``); times
    HHMM local, delays and ``air_time`` in minutes, ``distance`` in miles."""

    id: int
    year: int
    month: int
    day: int
    dep_time: int | None
    sched_dep_time: int
    dep_delay: int | None
    arr_time: int | None
    sched_arr_time: int
    arr_delay: int | None
    carrier: str
    flight: int
    tailnum: str | None
    origin: str
    dest: str
    air_time: int | None
    distance: int | None
    hour: int
    minute: int
    time_hour: str  # RFC 3339 UTC timestamp of the scheduled hour


class AirportRef(ApiModel):
    """An airport's ``name`` and IANA ``tzone`` (None when unknown) inside a flight's detail."""

    name: str
    tzone: str | None


class Plane(ApiModel):
    """An aircraft inside a flight's detail (planes table, by tail number): ``year`` of
    manufacture, number of ``seats``; any field may be None."""

    manufacturer: str | None
    model: str | None
    year: int | None
    seats: int | None


class FlightDetail(Flight):
    """``GET /flights/{id}``: a flight plus its reference data, each None when the
    reference tables do not know it."""

    origin_airport: AirportRef | None
    dest_airport: AirportRef | None
    plane: Plane | None


class FlightPage(ApiModel):
    """One page of ``GET /flights``: ``items``, ``total`` (matches over all pages) and the
    opaque ``next_cursor`` / ``prev_cursor`` (None on the last / first page)."""

    items: list[Flight]
    total: int = Field(ge=0)
    next_cursor: str | None
    prev_cursor: str | None


class CarrierStats(ApiModel):
    """One row of ``GET /stats/carriers``; delays in minutes, ``on_time_share`` in 0..1.
    ``name`` is None for a carrier missing from the airlines table."""

    carrier: str
    name: str | None
    flights: int
    cancelled: int
    arrived: int
    mean_arr_delay: float | None
    p95_arr_delay: float | None
    on_time_share: float | None


class CarrierStatsList(ApiModel):
    items: list[CarrierStats]


class DailyStats(ApiModel):
    """One row of ``GET /stats/daily``: the date, flight count, mean departure and arrival
    delay (minutes)."""

    date: dt.date
    flights: int
    mean_dep_delay: float | None
    mean_arr_delay: float | None


class DailyStatsList(ApiModel):
    items: list[DailyStats]


class HourStats(ApiModel):
    """One row of ``GET /stats/hours``: scheduled departure hour 0..23 (local), delays in
    minutes, ``on_time_share`` in 0..1."""

    hour: int
    flights: int
    cancelled: int
    arrived: int
    mean_dep_delay: float | None
    mean_arr_delay: float | None
    on_time_share: float | None


class HourStatsList(ApiModel):
    items: list[HourStats]


class DestinationStats(ApiModel):
    """One row of ``GET /stats/destinations``; ``name`` is None where airports has none."""

    dest: str
    name: str | None
    flights: int
    cancelled: int
    arrived: int
    mean_arr_delay: float | None
    on_time_share: float | None


class DestinationStatsList(ApiModel):
    items: list[DestinationStats]


class WeatherBandStats(ApiModel):
    """One row of ``GET /stats/weather``: flights whose origin's weather in their scheduled
    hour had ``measure`` (``precip`` inches, ``visib`` miles, ``wind_speed`` mph) in
    [``lower``, ``upper``) (``upper`` None: unbounded); delays in minutes,
    ``cancelled_share`` in 0..1."""

    measure: Literal["precip", "visib", "wind_speed"]
    lower: float
    upper: float | None
    flights: int
    cancelled: int
    cancelled_share: float | None
    mean_dep_delay: float | None
    mean_arr_delay: float | None


class WeatherStatsList(ApiModel):
    items: list[WeatherBandStats]


class Airline(ApiModel):
    """One row of ``GET /airlines``."""

    carrier: str
    name: str


class AirlineList(ApiModel):
    items: list[Airline]


class Airport(ApiModel):
    """One row of ``GET /airports``: coordinates in degrees, ``alt`` in feet, ``tz`` hours
    from UTC; all but ``faa`` and ``name`` may be unknown (None)."""

    faa: str
    name: str
    lat: float | None
    lon: float | None
    alt: int | None
    tz: int | None
    dst: str | None
    tzone: str | None


class AirportList(ApiModel):
    items: list[Airport]


class FieldProblem(ApiModel):
    """One entry of a 422 problem body's ``errors`` list: the request field and why."""

    field: str
    message: str


# Every answer model, by the name of the backend's schema it mirrors (tests/test_api_models.py).
API_MODELS: tuple[type[ApiModel], ...] = (
    Flight,
    AirportRef,
    Plane,
    FlightDetail,
    FlightPage,
    CarrierStats,
    CarrierStatsList,
    DailyStats,
    DailyStatsList,
    HourStats,
    HourStatsList,
    DestinationStats,
    DestinationStatsList,
    WeatherBandStats,
    WeatherStatsList,
    Airline,
    AirlineList,
    Airport,
    AirportList,
    FieldProblem,
)
Answer = TypeVar("Answer", bound=ApiModel)


class BackendError(Exception):
    """Base class of every backend failure. ``status_code`` is None for transport errors."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class BackendUnavailable(BackendError):
    """The backend could not be reached in time, answered 5xx, or sent a malformed response."""


class BackendNotFound(BackendError):
    """The backend answered 404 (unknown id or path)."""


class BackendValidationError(BackendError):
    """The backend answered 422. ``errors`` is the problem body's ``[{field, message}]`` list."""

    def __init__(self, message: str, errors: list[FieldProblem]) -> None:
        super().__init__(message, status_code=422)
        self.errors = errors


def _circuit_changed(old: State, new: State) -> None:
    backend_calls.set_circuit_state(new)
    log = logger.warning if new == "open" else logger.info
    log("circuit_breaker.changed", previous=old, state=new)


def _add_request_id(request: httpx.Request) -> None:
    """httpx request hook: forward the current request id (none outside a request)."""
    request_id = current_request_id()
    if request_id is not None:
        request.headers[REQUEST_ID_HEADER] = request_id


def _clean_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty filters so the backend sees only what the user set."""
    return {k: v for k, v in params.items() if v is not None and v != ""}


def _parse(model: type[Answer], response: httpx.Response) -> Answer:
    """The response body validated as `model` (pydantic, from the JSON bytes); a body that is
    not JSON or does not fit the model raises BackendUnavailable (a bad answer: 503 page)."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'body'}: {error['msg']}"
            for error in exc.errors(include_input=False)[:3]
        )
        raise BackendUnavailable(f"malformed {model.__name__} from backend ({problems})") from exc


class BackendClient:
    """Typed access to the backend API. Thread-safe; one instance per Flask app.

    Timeouts come from settings (seconds): ``BACKEND_CONNECT_TIMEOUT_SECONDS`` for connecting,
    ``BACKEND_READ_TIMEOUT_SECONDS`` for reading/writing. Every method raises a
    :class:`BackendError` subclass on failure.
    """

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = settings.backend_base_url
        self.timeout = httpx.Timeout(
            connect=settings.BACKEND_CONNECT_TIMEOUT_SECONDS,
            read=settings.BACKEND_READ_TIMEOUT_SECONDS,
            write=settings.BACKEND_READ_TIMEOUT_SECONDS,
            pool=settings.BACKEND_CONNECT_TIMEOUT_SECONDS,
        )
        # How long a page may wait for the backend in all (web/budget.py), per process.
        self.budget = Budget(
            settings.BACKEND_READ_TIMEOUT_SECONDS, settings.BACKEND_MAX_TIMEOUT_SECONDS
        )
        self.readiness_timeout = settings.READINESS_TIMEOUT_SECONDS
        self.retry_window = settings.BACKEND_RETRY_WINDOW_SECONDS
        # The shared key (BACKEND_API_KEY): the backend refuses /api/v1 calls without it.
        self.default_headers = {"Accept": "application/json"}
        if settings.backend_api_key:
            self.default_headers["Authorization"] = f"Bearer {settings.backend_api_key}"
        # TELEMETRY_ENABLED=false: no client spans, no backend_request_duration_seconds.
        self.telemetry = settings.TELEMETRY_ENABLED
        self._transport = transport
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._client_pid: int | None = None
        self._cache: dict[str, tuple[float, ApiModel]] = {}
        # Per process (each gunicorn worker builds its own app): web/circuit_breaker.py.
        self.breaker = CircuitBreaker(
            settings.BACKEND_CIRCUIT_FAILURES,
            settings.BACKEND_CIRCUIT_RESET_SECONDS,
            on_change=_circuit_changed,
        )
        backend_calls.set_circuit_state("closed")

    # -- plumbing ---------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        """The process's httpx.Client, created on first use (after any gunicorn fork)."""
        pid = os.getpid()
        with self._lock:
            if self._client is None or self._client_pid != pid:
                # A client inherited across fork shares sockets with the parent: never reuse it.
                # The OpenTelemetry transport wraps the real one (a fresh wrapper per client, so
                # a reused test transport is never instrumented twice); the tracer provider is
                # this process's, set up after the fork.
                transport: httpx.BaseTransport = self._transport or httpx.HTTPTransport()
                if self.telemetry:
                    transport = SyncOpenTelemetryTransport(
                        transport,
                        tracer_provider=tracing.provider(),
                        request_hook=name_client_span,  # "GET /api/v1/flights/{flight_id}"
                    )
                self._client = httpx.Client(
                    base_url=self.base_url,
                    timeout=self.timeout,
                    transport=transport,
                    headers=self.default_headers,
                    follow_redirects=False,
                    event_hooks={"request": [_add_request_id]},
                )
                self._client_pid = pid
                self._cache.clear()
            return self._client

    def _observe(self, method: str, route: str, status: int | None, seconds: float) -> None:
        if self.telemetry:
            backend_calls.observe_backend(method, route, status, seconds)

    def close(self) -> None:
        """Close the pooled connections (tests, worker exit). A later call reopens lazily."""
        with self._lock:
            if self._client is not None and self._client_pid == os.getpid():
                self._client.close()
            self._client = None
            self._client_pid = None

    def _request(
        self,
        method: str,
        route: str,
        path: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Send one request (retried when safe, see the module doc) and translate failures into
        the BackendError hierarchy.

        ``route`` is the backend's route template (``/api/v1/flights/{flight_id}``), the metric
        label; ``path`` the concrete path (defaults to ``route`` for routes without parameters).
        ``idempotency_key`` (a write's) is sent as ``Idempotency-Key`` and makes it retryable.
        Returns the response for 2xx statuses only.
        """
        kwargs: dict[str, Any] = {}
        if params:
            kwargs["params"] = _clean_params(params)
        if json is not None:
            kwargs["json"] = json
        if idempotency_key is not None:
            kwargs["headers"] = {IDEMPOTENCY_HEADER: f'"{idempotency_key}"'}  # an sf-string
        kwargs["timeout"], page_start, budget = self._page_timeout()
        retryable = method in IDEMPOTENT_METHODS or idempotency_key is not None

        sent = 0

        def attempt() -> httpx.Response:
            nonlocal sent
            if sent:  # what is left of the budget or the window
                left = page_start + max(budget, self.retry_window) - time.monotonic()
                if left < MIN_CALL_SECONDS:
                    raise BackendUnavailable("no time left to retry the backend call")
                kwargs["timeout"] = self._timeouts(left)
            sent += 1
            # The route template names the client span (web/observability/backend_calls.py).
            return self._http().request(
                method, path or route, extensions={URL_TEMPLATE: route}, **kwargs
            )

        attempts = self._retrying(retryable, page_start, budget)
        started = time.perf_counter()
        try:
            response = self._guarded(method, route, lambda: attempts(attempt))
        except httpx.TimeoutException as exc:
            self._observe(method, route, None, time.perf_counter() - started)
            self.budget.timed_out(budget)
            raise BackendUnavailable(f"backend timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            self._observe(method, route, None, time.perf_counter() - started)
            raise BackendUnavailable(f"backend unreachable ({type(exc).__name__})") from exc
        self._observe(method, route, response.status_code, time.perf_counter() - started)
        self.budget.succeeded(time.monotonic() - page_start)

        status = response.status_code
        if 200 <= status < 300:
            return response
        detail = _problem_detail(response)
        if status == 404:
            raise BackendNotFound(detail or "not found", status_code=404)
        if status == 422:
            raise BackendValidationError(detail or "validation failed", _problem_errors(response))
        if status >= 500:
            raise BackendUnavailable(f"backend answered {status}: {detail}", status_code=status)
        raise BackendError(f"backend answered {status}: {detail}", status_code=status)

    def _retrying(self, retryable: bool, page_start: float, budget: float) -> Retrying:
        """The retry policy of one call (module doc): after RETRY_ERRORS or a 503, while
        attempts, the page's budget (seconds from `page_start`) and a closed circuit allow;
        when it stops, the last outcome (response or exception) is the call's."""

        breaker, retry_window = self.breaker, self.retry_window

        class no_time_left(stop_base):
            def __call__(self, state: RetryCallState) -> bool:
                if breaker.state == "open":
                    return True
                deadline = page_start + max(budget, retry_window)
                left = deadline - time.monotonic() - (state.upcoming_sleep or 0.0)
                return left < 2 * MIN_CALL_SECONDS

        def retrying(state: RetryCallState) -> None:
            outcome = state.outcome
            failure = outcome.exception() if outcome is not None else None
            why = type(failure).__name__ if failure is not None else "503"
            logger.info("backend.retry", reason=why, attempt=state.attempt_number)

        return Retrying(
            retry=retry_if_exception_type(RETRY_ERRORS)
            | retry_if_result(lambda response: response.status_code in RETRY_STATUSES),
            stop=stop_any(stop_after_attempt(RETRY_ATTEMPTS if retryable else 1), no_time_left()),
            wait=wait_random_exponential(
                multiplier=RETRY_BACKOFF_SECONDS, max=RETRY_MAX_BACKOFF_SECONDS
            ),
            before_sleep=retrying,
            # Out of attempts or time: the last answer stands (or its exception is raised).
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )

    def _page_timeout(self) -> tuple[httpx.Timeout, float, float]:
        """The call's timeouts, cut to what is left of the page's budget (web/budget.py:
        about BACKEND_READ_TIMEOUT_SECONDS, more while the backend was recently slower),
        counted from when the request arrived at the worker (web/worker.py), so time spent
        queued behind other pages counts too. Returns (timeouts, the page's start, its
        budget); raises BackendUnavailable when nothing is left (no call is made)."""
        now = time.monotonic()
        start = request_arrived_at() or now
        budget = self.budget.seconds()
        left = start + budget - now
        if left < MIN_CALL_SECONDS:
            self.budget.timed_out(budget)
            raise BackendUnavailable(
                f"page budget of {budget:.1f} s spent before calling the backend"
            )
        return self._timeouts(left), start, budget

    def _timeouts(self, left: float) -> httpx.Timeout:
        """The call's timeouts when `left` seconds remain (connect and pool at most theirs)."""
        return httpx.Timeout(
            connect=min(self.timeout.connect or left, left),
            read=left,
            write=left,
            pool=min(self.timeout.pool or left, left),
        )

    def _guarded(
        self, method: str, route: str, send: Callable[[], httpx.Response]
    ) -> httpx.Response:
        """``send()`` through the circuit breaker: raises BackendUnavailable at once (no network,
        observed as outcome ``unavailable`` taking 0 s) while the circuit is open; counts no
        answer (timeout, refused) and 502/503/504 as failures, any other answer as success."""
        started = time.monotonic()
        try:
            trial = self.breaker.acquire()
        except CircuitOpen as exc:
            self._observe(method, route, None, 0.0)
            raise BackendUnavailable(
                f"circuit open after {self.breaker.failure_threshold} failed backend calls "
                f"in a row; next trial in {exc.retry_in:.1f} s"
            ) from exc
        success = False
        try:
            response = send()
            success = response.status_code not in CIRCUIT_FAILURE_STATUSES
            return response
        finally:
            self.breaker.record(success, trial, started)

    def _cached(self, key: str, model: type[Answer], load: Callable[[], httpx.Response]) -> Answer:
        """The answer of `load()` as `model`, reused for REFERENCE_CACHE_SECONDS."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return cast(Answer, hit[1])  # each key only ever holds its one model
        value = _parse(model, load())  # raises on failure, so failures are never cached
        self._cache[key] = (now + REFERENCE_CACHE_SECONDS, value)
        return value

    # -- flights ----------------------------------------------------------------------------

    def list_flights(
        self, filters: Mapping[str, Any], cursor: str | None = None, limit: int = 50
    ) -> FlightPage:
        """``GET /flights``: one page of a search.

        ``filters`` may hold origin, dest, carrier, date_from, date_to (``YYYY-MM-DD``),
        min_dep_delay and min_arr_delay (minutes), cancelled (``"true"``/``"false"``), hour
        (0-23), sort and order (``asc``/``desc``); empty values are dropped. Raises
        BackendValidationError for bad filter values or a stale cursor (or one of another sort).
        """
        params = {**filters, "cursor": cursor, "limit": limit}
        return _parse(FlightPage, self._request("GET", f"{API_PREFIX}/flights", params=params))

    def get_flight(self, flight_id: int) -> FlightDetail:
        """``GET /flights/{id}``: the flight with its airports' names and time zones and its
        aircraft (each None when unknown). Raises BackendNotFound for an unknown id."""
        path = f"{API_PREFIX}/flights/{int(flight_id)}"
        return _parse(FlightDetail, self._request("GET", FLIGHT_ROUTE, path))

    def create_flight(self, data: Mapping[str, Any], idempotency_key: str | None = None) -> Flight:
        """``POST /flights`` with a FlightCreate body. Returns the new flight (with its id).

        With ``idempotency_key`` (one per submitted form) the backend applies a repeated
        request once, so it is retried like a read. Raises BackendValidationError (422) with
        field errors.
        """
        response = self._request(
            "POST", f"{API_PREFIX}/flights", json=dict(data), idempotency_key=idempotency_key
        )
        return _parse(Flight, response)

    def update_flight(
        self, flight_id: int, data: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Flight:
        """``PATCH /flights/{id}`` with any subset of FlightCreate fields. Returns the flight.

        ``idempotency_key`` as for create_flight. Raises BackendNotFound or
        BackendValidationError.
        """
        path = f"{API_PREFIX}/flights/{int(flight_id)}"
        response = self._request(
            "PATCH", FLIGHT_ROUTE, path, json=dict(data), idempotency_key=idempotency_key
        )
        return _parse(Flight, response)

    def delete_flight(self, flight_id: int) -> None:
        """``DELETE /flights/{id}`` (204). Raises BackendNotFound for an unknown id."""
        self._request("DELETE", FLIGHT_ROUTE, f"{API_PREFIX}/flights/{int(flight_id)}")

    # -- statistics and reference data ------------------------------------------------------

    def carrier_stats(
        self, origin: str | None = None, month: int | None = None, year: int | None = None
    ) -> list[CarrierStats]:
        """``GET /stats/carriers``: per-carrier counts and arrival-delay figures, by carrier."""
        params = {"origin": origin, "month": month, "year": year}
        response = self._request("GET", f"{API_PREFIX}/stats/carriers", params=params)
        return _parse(CarrierStatsList, response).items

    def hour_stats(
        self, origin: str | None = None, month: int | None = None, year: int | None = None
    ) -> list[HourStats]:
        """``GET /stats/hours``: figures per scheduled departure hour, ordered by hour."""
        params = {"origin": origin, "month": month, "year": year}
        response = self._request("GET", f"{API_PREFIX}/stats/hours", params=params)
        return _parse(HourStatsList, response).items

    def destination_stats(
        self,
        origin: str | None = None,
        month: int | None = None,
        year: int | None = None,
        limit: int = 20,
    ) -> list[DestinationStats]:
        """``GET /stats/destinations``: the ``limit`` busiest destinations, busiest first."""
        params = {"origin": origin, "month": month, "year": year, "limit": limit}
        response = self._request("GET", f"{API_PREFIX}/stats/destinations", params=params)
        return _parse(DestinationStatsList, response).items

    def weather_stats(
        self, origin: str | None = None, month: int | None = None, year: int | None = None
    ) -> list[WeatherBandStats]:
        """``GET /stats/weather``: figures per band of weather at the origin (docs/api.md)."""
        params = {"origin": origin, "month": month, "year": year}
        response = self._request("GET", f"{API_PREFIX}/stats/weather", params=params)
        return _parse(WeatherStatsList, response).items

    def daily_stats(
        self, origin: str | None = None, carrier: str | None = None
    ) -> list[DailyStats]:
        """``GET /stats/daily``: flights and mean departure and arrival delay per day, ordered
        by date."""
        params = {"origin": origin, "carrier": carrier}
        response = self._request("GET", f"{API_PREFIX}/stats/daily", params=params)
        return _parse(DailyStatsList, response).items

    def airlines(self) -> list[Airline]:
        """``GET /airlines`` ordered by carrier code (cached for a few minutes)."""

        def load() -> httpx.Response:
            return self._request("GET", f"{API_PREFIX}/airlines")

        return self._cached("airlines", AirlineList, load).items

    def airports(self, kind: Literal["all", "origin"] = "all") -> list[Airport]:
        """``GET /airports?kind=`` ordered by FAA code (cached for a few minutes)."""

        def load() -> httpx.Response:
            return self._request("GET", f"{API_PREFIX}/airports", params={"kind": kind})

        return self._cached(f"airports:{kind}", AirportList, load).items

    def ready(self) -> dict[str, Any]:
        """``GET /readyz`` with the short readiness timeout (seconds).

        Returns the backend's body when it is ready; raises BackendUnavailable with a short
        human-readable reason (e.g. ``"connection refused"``, ``"database: timeout"``) if not.
        """
        timeout = httpx.Timeout(self.readiness_timeout)
        started = time.perf_counter()
        try:
            # Probes are not traced, and /readyz has no server span to hang a client span on:
            # without suppression every probe would export an orphan root span.
            with suppress_instrumentation():
                response = self._guarded(
                    "GET",
                    READINESS_ROUTE,
                    lambda: self._http().get(READINESS_ROUTE, timeout=timeout),
                )
        except httpx.HTTPError as exc:
            self._observe("GET", READINESS_ROUTE, None, time.perf_counter() - started)
            if isinstance(exc, httpx.TimeoutException):
                reason = f"timeout after {self.readiness_timeout:g} s"
            elif isinstance(exc, httpx.ConnectError):
                reason = "connection refused or host unreachable"
            else:
                reason = f"unreachable ({type(exc).__name__})"
            raise BackendUnavailable(reason) from exc
        elapsed = time.perf_counter() - started
        self._observe("GET", READINESS_ROUTE, response.status_code, elapsed)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict):
            return body
        reason = f"not ready (HTTP {response.status_code})"
        if isinstance(body, dict) and isinstance(body.get("checks"), dict):
            failing = [f"{k}: {v}" for k, v in body["checks"].items() if v != "ok"]
            if failing:
                reason = "not ready (" + "; ".join(str(f) for f in failing) + ")"
        raise BackendUnavailable(reason, status_code=response.status_code)


def _problem_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _problem_detail(response: httpx.Response) -> str:
    body = _problem_body(response)
    detail = body.get("detail") or body.get("title") or response.reason_phrase
    return str(detail)


def _problem_errors(response: httpx.Response) -> list[FieldProblem]:
    """The ``errors`` list of a 422 problem body, keeping only well-formed entries (the 422
    is the answer; a malformed entry in it loses only itself)."""
    raw = _problem_body(response).get("errors")
    errors: list[FieldProblem] = []
    if isinstance(raw, list):
        for entry in raw:
            if isinstance(entry, dict) and "message" in entry:
                errors.append(
                    FieldProblem(field=str(entry.get("field", "")), message=str(entry["message"]))
                )
    return errors
