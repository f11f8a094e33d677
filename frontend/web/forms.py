"""WTForms forms: the flight create/edit form (CSRF via Flask-WTF) and the GET filter forms.

Local validation catches obvious mistakes before a backend round trip; the backend stays the
authority and its 422 ``errors`` are mapped back onto these fields by :func:`apply_backend_errors`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import orjson
from flask_wtf import FlaskForm
from wtforms import DateField, Form, HiddenField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # 3.3, not in stubs
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from web.backend_client import FieldProblem

MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip


def options(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """Select options from ``(value, label)`` pairs."""
    return [SelectChoice(value=value, label=label) for value, label in pairs]


# The edit form's hidden `seen` field: the JSON of one flight (~400 characters).
MAX_SEEN_CHARS = 4096

CLOCK_MESSAGE = "Enter a clock time HHMM from 0 to 2359 with minutes below 60 (midnight is 0)."


def is_clock_time(value: int) -> bool:
    """True for an HHMM clock time: 0..2359 and the last two digits (minutes) below 60."""
    return 0 <= value <= 2359 and value % 100 < 60


def clock_time(form: Any, field: Any) -> None:
    """WTForms validator for HHMM clock times (see :func:`is_clock_time`); None passes."""
    if field.data is not None and not is_clock_time(field.data):
        raise ValidationError(CLOCK_MESSAGE)


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _strip_or_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


class FlightForm(FlaskForm):
    """Create/edit form for one flight. ``date`` maps to the API's ``year``/``month``/``day``.

    ``carrier`` and ``origin`` choices must be set by the view from ``/airlines`` and
    ``/airports?kind=origin``.
    """

    date = DateField("Date (scheduled departure)", validators=[InputRequired()])
    carrier = SelectField("Carrier", validators=[DataRequired()])
    flight = IntegerField(
        "Flight number",
        validators=[InputRequired(), NumberRange(min=1, message="Must be 1 or more.")],
    )
    tailnum = StringField(
        "Tail number", filters=[_strip_or_none], validators=[Optional(), Length(max=10)]
    )
    origin = SelectField("Origin", validators=[DataRequired()])
    dest = StringField(
        "Destination",
        filters=[_upper],
        validators=[
            DataRequired(),
            Regexp(r"^[A-Z]{3}$", message="Enter a three-letter airport code, e.g. LAX."),
        ],
    )
    sched_dep_time = IntegerField(
        "Scheduled departure (HHMM)", validators=[InputRequired(), clock_time]
    )
    sched_arr_time = IntegerField(
        "Scheduled arrival (HHMM)", validators=[InputRequired(), clock_time]
    )
    dep_time = IntegerField("Actual departure (HHMM)", validators=[Optional(), clock_time])
    arr_time = IntegerField("Actual arrival (HHMM)", validators=[Optional(), clock_time])
    dep_delay = IntegerField("Departure delay (minutes)", validators=[Optional()])
    arr_delay = IntegerField("Arrival delay (minutes)", validators=[Optional()])
    air_time = IntegerField(
        "Air time (minutes)",
        validators=[Optional(), NumberRange(min=0, message="Cannot be negative.")],
    )
    distance = IntegerField(
        "Distance (miles)",
        validators=[Optional(), NumberRange(min=0, message="Cannot be negative.")],
    )

    # Edit form only: the API values the form showed (JSON), so a save sends only what this
    # user changed and never reverts a field someone else changed in the meantime.
    seen = HiddenField()
    # One key per form as rendered (a UUID): sent as the backend's Idempotency-Key, so a
    # write the frontend retries, or the browser submits again, is applied once.
    idempotency_key = HiddenField(default=lambda: str(uuid.uuid4()))

    # Fields in the order the API names them (everything but the derived hour/minute/time_hour).
    API_FIELDS = (
        "year", "month", "day", "sched_dep_time", "sched_arr_time", "dep_time", "arr_time",
        "dep_delay", "arr_delay", "carrier", "flight", "tailnum", "origin", "dest",
        "air_time", "distance",
    )  # fmt: skip

    def to_api(self) -> dict[str, Any]:
        """The validated data as a FlightCreate body (``year``/``month``/``day`` from ``date``)."""
        d = self.date.data
        if d is None:  # InputRequired: a validated form has a date
            raise ValueError("to_api() of a form that did not validate")
        body: dict[str, Any] = {"year": d.year, "month": d.month, "day": d.day}
        for name in self.API_FIELDS[3:]:
            body[name] = getattr(self, name).data
        return body

    @classmethod
    def data_from_flight(cls, flight: Mapping[str, Any]) -> dict[str, Any]:
        """Form data (keyword arguments for the constructor) from an API flight object,
        including ``seen``: the API fields as shown, as JSON."""
        data = {name: flight.get(name) for name in cls.API_FIELDS[3:]}
        data["date"] = date(flight["year"], flight["month"], flight["day"])
        data["seen"] = json.dumps({name: flight.get(name) for name in cls.API_FIELDS})
        return data

    def write_key(self) -> str:
        """The submitted ``idempotency_key`` if it is a UUID, else a new one (a form from
        before this field, or a tampered value: the write then has no browser re-submit
        protection, but the frontend's own retries still use one key)."""
        try:
            return str(uuid.UUID(self.idempotency_key.data or ""))
        except ValueError:
            return str(uuid.uuid4())

    def seen_values(self) -> dict[str, Any] | None:
        """The API values the edit form showed, or None when absent, too long or not a JSON
        object. The field comes back from the browser, so anything may be in it: orjson
        bounds the nesting (the stdlib decoder raised RecursionError, a 500)."""
        text = self.seen.data or ""
        if len(text) > MAX_SEEN_CHARS:
            return None
        try:
            seen = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        return seen if isinstance(seen, dict) else None


# The API reports date problems on year/month/day; the form has one date input for them.
API_FIELD_TO_FORM_FIELD = {"year": "date", "month": "date", "day": "date"}


def apply_backend_errors(form: Any, errors: Iterable[FieldProblem]) -> list[str]:
    """Attach a 422 problem's ``[{field, message}]`` to the matching form fields.

    Returns the messages that match no field (shown above the form). Field names are the API's
    (body field or query parameter); ``year``/``month``/``day`` land on ``date``, and a dotted
    or bracketed name such as ``body.carrier`` uses its last part.
    """
    unmatched: list[str] = []
    for error in errors:
        raw = error.field
        message = error.message or "invalid value"
        name = re.split(r"[.\[\]]+", raw.strip(".[]"))[-1] if raw else ""
        name = API_FIELD_TO_FORM_FIELD.get(name, name)
        field = form._fields.get(name) if name else None
        if field is None:
            unmatched.append(f"{raw}: {message}" if raw else message)
            continue
        # WTForms keeps process errors as a tuple until validate() runs; make it appendable.
        field.errors = [*field.errors, message]
    return unmatched


class DeleteForm(FlaskForm):
    """Empty form: carries only the CSRF token for the delete confirmation."""


# The search's sort columns (the API's `sort` values) with their labels, and the order each
# starts with when chosen from a column header (the largest delays and distances first).
SORTS = {
    "date": ("Date", "asc"),
    "carrier": ("Carrier", "asc"),
    "flight": ("Flight number", "asc"),
    "origin": ("Origin", "asc"),
    "dest": ("Destination", "asc"),
    "dep_delay": ("Departure delay", "desc"),
    "arr_delay": ("Arrival delay", "desc"),
    "air_time": ("Air time", "desc"),
    "distance": ("Distance", "desc"),
}
ORDERS = {"asc": "Ascending", "desc": "Descending"}


class SearchForm(Form):
    """Flight search filters and sort, read from the query string (GET, so no CSRF).

    The field names are the API's query parameters (and the page's URL parameters, which
    other pages link to): origin, dest, carrier, date_from, date_to, min_dep_delay,
    min_arr_delay, cancelled (``true``/``false``), hour (0-23), sort, order.
    """

    origin = SelectField("Origin", default="")
    dest = StringField(
        "Destination",
        filters=[_upper],
        validators=[Optional(), Regexp(r"^[A-Z]{3}$", message="Three letters, e.g. LAX.")],
    )
    carrier = SelectField("Carrier", default="")
    date_from = DateField("From date", validators=[Optional()])
    date_to = DateField("To date", validators=[Optional()])
    min_dep_delay = IntegerField("Min. dep. delay (minutes)", validators=[Optional()])
    min_arr_delay = IntegerField("Min. arr. delay (minutes)", validators=[Optional()])
    cancelled = SelectField(
        "Cancelled",
        default="",
        choices=options(
            [("", "All flights"), ("true", "Only cancelled"), ("false", "Not cancelled")]
        ),
    )
    hour = SelectField(
        "Scheduled hour",
        default="",
        choices=options(
            [("", "Any hour"), *((str(h), f"{h:02d}:00 to {h:02d}:59") for h in range(24))]
        ),
    )
    sort = SelectField(
        "Sort by", default="date", choices=options((k, label) for k, (label, _) in SORTS.items())
    )
    order = SelectField("Order", default="asc", choices=options(ORDERS.items()))

    def validate_date_to(self, field: Any) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("Must be on or after the from date.")

    def to_api(self) -> dict[str, Any]:
        """The filters as API query parameters (empty ones omitted by the client)."""
        return {
            "origin": self.origin.data or None,
            "dest": self.dest.data or None,
            "carrier": self.carrier.data or None,
            "date_from": self.date_from.data.isoformat() if self.date_from.data else None,
            "date_to": self.date_to.data.isoformat() if self.date_to.data else None,
            "min_dep_delay": self.min_dep_delay.data,
            "min_arr_delay": self.min_arr_delay.data,
            "cancelled": self.cancelled.data or None,
            "hour": self.hour.data or None,
            # the defaults are left out: shorter links, the same search
            "sort": self.sort.data if self.sort.data != "date" else None,
            "order": self.order.data if self.order.data != "asc" else None,
        }

    def query_args(self) -> dict[str, str]:
        """The filters as they should appear in links (only the ones the user set)."""
        return {k: str(v) for k, v in self.to_api().items() if v is not None and v != ""}


class DashboardForm(Form):
    """Dashboard filters (GET): origin airport and month."""

    origin = SelectField("Origin", default="")
    month = SelectField(
        "Month",
        default="",
        choices=options([("", "All months"), *((str(i), m) for i, m in enumerate(MONTHS, 1))]),
    )
