"""Flight pages: search ``/flights``, detail, create, edit, delete (with confirmation).

Writes use POST/redirect/GET with a flash message. Backend 422 field errors are shown beside
the matching form fields; 404s and outages go to the error handlers in ``errors.py``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError

from web.backend_client import BackendError, BackendValidationError, Flight, FlightPage
from web.deployment import refused_for_plain_http
from web.flight_times import departure_times
from web.forms import (
    ORDERS,
    SORTS,
    DeleteForm,
    FlightForm,
    SearchForm,
    apply_backend_errors,
    options,
)
from web.views import backend

bp = Blueprint("flights", __name__, url_prefix="/flights")

PAGE_SIZE = 50
EXPIRED_MESSAGE = (
    "This form expired before it was sent (it was open too long, or its security token was "
    "missing). Nothing was saved. Your entries are kept below: check them and submit again."
)


def _airline_names() -> dict[str, str]:
    return {a.carrier: a.name for a in backend().airlines()}


def _set_choices(form: FlightForm) -> None:
    client = backend()
    form.carrier.choices = options(
        [("", "Choose a carrier")]
        + [(a.carrier, f"{a.carrier} — {a.name}") for a in client.airlines()]
    )
    form.origin.choices = options(
        [("", "Choose an airport")]
        + [(a.faa, f"{a.faa} — {a.name}") for a in client.airports("origin")]
    )


@bp.get("")
def search() -> ResponseReturnValue:
    """Search form plus one page of results. ``cursor`` in the query string selects the page;
    ``sort`` and ``order`` the order (column header links and the form's Sort by)."""
    client = backend()
    form = SearchForm(request.args)
    origins = client.airports("origin")
    form.origin.choices = options([("", "Any")] + [(a.faa, a.faa) for a in origins])
    airlines = client.airlines()
    form.carrier.choices = options(
        [("", "Any")] + [(a.carrier, f"{a.carrier} — {a.name}") for a in airlines]
    )
    cursor = request.args.get("cursor") or None

    page: FlightPage | None = None
    messages: list[str] = []
    if form.validate():
        try:
            page = client.list_flights(form.to_api(), cursor=cursor, limit=PAGE_SIZE)
        except BackendValidationError as exc:
            unmatched = apply_backend_errors(form, exc.errors)
            if any(e.field == "cursor" for e in exc.errors):
                messages.append(
                    "That page link is no longer valid (or belongs to another sort order). "
                    "Start again from the first page."
                )
            messages.extend(m for m in unmatched if not m.startswith("cursor"))
            if not messages:
                messages.append("Please correct the highlighted filters.")
    else:
        messages.append("Please correct the highlighted filters.")

    # Any: url_for's own keyword arguments (_external, ...) are not strings.
    filters: dict[str, Any] = form.query_args()
    # The order shown, read once (an unknown value falls back as the form's defaults do).
    sort = form.sort.data if form.sort.data in SORTS else "date"
    order = form.order.data if form.order.data in ORDERS else "asc"

    def page_url(page_cursor: str | None) -> str:
        return url_for("flights.search", cursor=page_cursor, **filters)

    return render_template(
        "flights/search.html",
        form=form,
        page=page,
        messages=messages,
        names={a.carrier: a.name for a in airlines},
        first_url=page_url(None),
        next_url=page_url(page.next_cursor) if page and page.next_cursor else None,
        prev_url=page_url(page.prev_cursor) if page and page.prev_cursor else None,
        # A Previous page link can lead back to the first page itself (no prev_cursor).
        on_first_page=cursor is None or bool(page and page.items and not page.prev_cursor),
        sort_headers=_sort_headers(sort, order, filters),
        # The order of the results in words, e.g. "arrival delay, descending".
        sort_caption=f"{SORTS[sort][0].lower()}, {ORDERS[order].lower()}",
    )


def _sort_headers(sort: str, order: str, filters: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per sortable column: the header link (first page, that column's sort) and its
    ``aria-sort`` (``ascending``/``descending`` on the sorted column, else none)."""
    headers = {}
    for name, (label, first_order) in SORTS.items():
        # The sorted column's link reverses it; another column's starts in its own order.
        link_order = ("desc" if order == "asc" else "asc") if name == sort else first_order
        args = {**filters, "sort": name, "order": link_order}
        if name == "date":
            args.pop("sort")
        if link_order == "asc":
            args.pop("order")
        headers[name] = {
            "url": url_for("flights.search", **args),
            "aria_sort": ORDERS[order].lower() if name == sort else "",
            "hint": f"sort by {label.lower()}, {ORDERS[link_order].lower()}",
        }
    return headers


@bp.get("/<int:flight_id>")
def detail(flight_id: int) -> ResponseReturnValue:
    """All fields of one flight with Edit and Delete buttons; 404 page for an unknown id."""
    flight = backend().get_flight(flight_id)
    return render_template(
        "flights/detail.html",
        flight=flight,
        carrier_name=_airline_names().get(flight.carrier),
        times=departure_times(flight),
    )


def _save(form: FlightForm, flight_id: int | None, original: Flight | None) -> Flight | None:
    """Send the form to the backend. Returns the saved flight, or None after mapping errors."""
    body = form.to_api()
    if original is not None:
        # PATCH only what this user changed, compared with what the form showed (not with
        # the flight now: a field someone else saved meanwhile would be reverted).
        shown = form.seen_values() or original.model_dump()
        body = {k: v for k, v in body.items() if shown.get(k) != v}
    key = form.write_key()
    try:
        if flight_id is None:
            return backend().create_flight(body, idempotency_key=key)
        if not body:
            return original
        return backend().update_flight(flight_id, body, idempotency_key=key)
    except BackendValidationError as exc:
        form.form_errors.extend(apply_backend_errors(form, exc.errors))
        if not any(f.errors for f in form) and not form.form_errors:
            form.form_errors.append(exc.message)
    except BackendError as exc:
        if exc.status_code != 409:
            raise
        form.form_errors.append(
            "Someone else changed this flight at the same time. Please submit again."
        )
    return None


@bp.route("/new", methods=["GET", "POST"])
def create() -> ResponseReturnValue:
    """Create a flight; on success redirect to its detail page with a flash message."""
    form = FlightForm()
    _set_choices(form)
    if form.validate_on_submit():
        saved = _save(form, None, None)
        if saved is not None:
            flash(f"Flight {saved.carrier} {saved.flight} created.", "success")
            return redirect(url_for("flights.detail", flight_id=saved.id), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template("flights/form.html", form=form, flight=None), status


@bp.route("/<int:flight_id>/edit", methods=["GET", "POST"])
def edit(flight_id: int) -> ResponseReturnValue:
    """Edit a flight (PATCH of the changed fields); redirect to the detail page on success."""
    original = backend().get_flight(flight_id)
    if request.method == "GET":
        form = FlightForm(data=FlightForm.data_from_flight(original.model_dump()))
    else:
        form = FlightForm()
    _set_choices(form)
    if form.validate_on_submit():
        saved = _save(form, flight_id, original)
        if saved is not None:
            flash(f"Flight {saved.carrier} {saved.flight} saved.", "success")
            return redirect(url_for("flights.detail", flight_id=flight_id), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template("flights/form.html", form=form, flight=original), status


@bp.route("/<int:flight_id>/delete", methods=["GET", "POST"])
def delete(flight_id: int) -> ResponseReturnValue:
    """GET: "Are you sure?" page. POST (with CSRF token): delete, flash, redirect to search."""
    form = DeleteForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        backend().delete_flight(flight_id)
        flash(f"Flight #{flight_id} deleted.", "success")
        return redirect(url_for("flights.search"), code=303)
    flight = backend().get_flight(flight_id)
    return render_template(
        "flights/delete.html",
        flight=flight,
        form=form,
        carrier_name=_airline_names().get(flight.carrier),
    )


@bp.errorhandler(CSRFError)
def form_expired(exc: CSRFError) -> ResponseReturnValue:
    """A flight form posted with an expired or missing CSRF token: nothing is written; the
    form is shown again with the values entered, a fresh token and a message (400), so no
    typing is lost. The delete confirmation is shown again the same way. Over plain http
    with a Secure cookie the message says so (web/deployment.py): reloading cannot help."""
    message = refused_for_plain_http() or EXPIRED_MESSAGE
    flight_id = (request.view_args or {}).get("flight_id")
    if request.endpoint == "flights.delete" and flight_id is not None:
        flight = backend().get_flight(flight_id)
        page = render_template(
            "flights/delete.html",
            flight=flight,
            form=DeleteForm(formdata=None),
            carrier_name=_airline_names().get(flight.carrier),
            expired_message=message,
        )
        return page, 400
    if request.endpoint not in ("flights.create", "flights.edit"):
        abort(400)
    original = backend().get_flight(flight_id) if flight_id is not None else None
    form = FlightForm(formdata=request.form)
    _set_choices(form)
    form.form_errors.append(message)
    return render_template("flights/form.html", form=form, flight=original), 400
