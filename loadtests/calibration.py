"""The calibration stack of the load gate: the same shape of work as the real stack, none of
its code.

The gate (gate.py) judges each endpoint's latency *relative to* this stack, measured in the
same run, on the same machine, under the same load generator. A slower or busier machine slows
both sides; a slower project slows only one (loadtests/README.md).

Two apps, served by the same server software and settings as the real services
(scripts/loadtest.sh starts them):

- ``backend_app``: a bare ASGI app under uvicorn (one process, like the backend), over an
  in-memory DuckDB database with the backend's settings (2 threads). ``GET /api`` runs one
  query shaped like the flight search (filter, sort, 51 rows of a 336,776-row table) in a
  worker thread, as FastAPI runs the backend's routes, and returns the rows as JSON.
- ``frontend_app``: a bare WSGI app under gunicorn (gthread, the frontend's workers and
  threads). ``GET /page`` calls ``backend_app`` over HTTP with httpx (a pooled client per
  process, as the real frontend's backend client), then renders an HTML table of the rows
  with plain string formatting, and returns it.

The amount of work is fixed in operations, not in time (``TABLE_ROWS``, ``PAGE_ROUNDS``), so it
takes longer on a slower machine exactly as our code does. It was sized so that, on the quiet
2-core reference machine, the calibration answers take the same order of time as the real
endpoints they stand for (figures in loadtests/README.md); the gate's limits are ratios, so
their exact size matters less than their staying fixed.

Only the standard library (and httpx in the frontend app), so it runs in either service's
virtual environment: ``uvicorn --app-dir loadtests calibration:backend_app`` and ``gunicorn
--chdir loadtests calibration:frontend_app``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

# The fixed workload (see the module doc). Changing it changes every normalised figure of the
# gate: re-measure the limits in thresholds.toml when you do.
TABLE_ROWS = 336_776  # as many as the demo data's flights
PAGE_ROUNDS = 60  # renders of the table per page (about a real search page's frontend work)
DUCKDB_CONFIG = {"threads": 2, "memory_limit": "1GB"}  # the backend's defaults (api/settings.py)
_CREATE = f"""
    CREATE TABLE work AS
    SELECT i AS id, i % 12 + 1 AS month, i % 28 + 1 AS day,
           CAST(hash(i) % 2400 AS INTEGER) AS dep_time,
           CAST(hash(i * 7) % 120 AS INTEGER) - 20 AS dep_delay,
           chr(65 + CAST(i % 16 AS INTEGER)) || chr(65 + CAST(i % 5 AS INTEGER)) AS carrier,
           ['EWR', 'JFK', 'LGA'][CAST(i % 3 AS INTEGER) + 1] AS origin
    FROM range({TABLE_ROWS}) AS t(i)"""
_QUERY = """
    SELECT * FROM work WHERE origin = $origin AND carrier = $carrier
    ORDER BY month, day, dep_time, id LIMIT 51"""
_ORIGINS = ("EWR", "JFK", "LGA")


class Work:
    """The calibration backend's database: one in-memory DuckDB connection per process, a
    cursor per request (as api/db/database.py does with the real file)."""

    def __init__(self) -> None:
        import duckdb  # the backend's virtual environment has it; the frontend's needs none

        self._connection = duckdb.connect(":memory:", config=DUCKDB_CONFIG)
        self._connection.execute(_CREATE)
        self._lock = threading.Lock()
        self._count = 0

    def answer(self) -> bytes:
        """One query (filters rotate, so no two answers in a row are alike) as JSON bytes."""
        with self._lock:
            self._count += 1
            n = self._count
            cursor = self._connection.cursor()
        try:
            params = {"origin": _ORIGINS[n % 3], "carrier": chr(65 + n % 16) + chr(65 + n % 5)}
            cursor.execute(_QUERY, params)
            columns = [c[0] for c in cursor.description or []]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()
        return json.dumps({"items": rows[:50], "next_cursor": None}).encode()


def page_html(items: Iterable[dict[str, Any]], rounds: int = PAGE_ROUNDS) -> bytes:
    """The calibration page: `rounds` times render the rows as an escaped HTML table."""
    html = ""
    rows = list(items)
    columns = list(rows[0]) if rows else []
    for _ in range(rounds):
        cells = [
            "<tr>" + "".join(f"<td>{_escape(str(row[c]))}</td>" for c in columns) + "</tr>"
            for row in rows
        ]
        html = (
            "<!doctype html><html><head><title>calibration</title></head><body><table>"
            + "".join(cells)
            + "</table></body></html>"
        )
    return html.encode()


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


_work: Work | None = None


async def backend_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable) -> None:
    """ASGI: ``GET /api`` -> the calibration API answer; ``/livez`` -> ok; else 404."""
    global _work
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _work = Work()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope.get("path", "")
    status, body, kind = 404, b"not found", b"text/plain"
    if path == "/api" and _work is not None:
        from anyio import to_thread  # as FastAPI runs a plain `def` route

        status, body, kind = 200, await to_thread.run_sync(_work.answer), b"application/json"
    elif path == "/livez":
        status, body, kind = 200, b'{"status":"ok"}', b"application/json"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_client_lock = threading.Lock()
_client: Any = None
_client_pid: int | None = None


def _http() -> Any:
    """This worker's pooled httpx client (made after the fork, as the real frontend does)."""
    global _client, _client_pid
    import httpx

    with _client_lock:
        if _client is None or _client_pid != os.getpid():
            url = os.environ.get("CALIBRATION_BACKEND_URL", "http://127.0.0.1:12025")
            _client = httpx.Client(base_url=url, timeout=httpx.Timeout(5.0, connect=1.0))
            _client_pid = os.getpid()
        return _client


def frontend_app(environ: dict[str, Any], start_response: Callable) -> list[bytes]:
    """WSGI: ``GET /page`` -> one backend call, then the rendered page; ``/livez`` -> ok."""
    path = environ.get("PATH_INFO", "")
    if path == "/livez":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status":"ok"}']
    if path != "/page":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    try:
        answer = _http().get("/api")
        answer.raise_for_status()
        items = answer.json()["items"]
    except Exception as exc:  # the calibration backend failed: a failed calibration request
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [f"calibration backend: {type(exc).__name__}".encode()]
    body = page_html(items)
    start_response(
        "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]
