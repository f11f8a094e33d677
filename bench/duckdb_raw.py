"""Raw in-process DuckDB time of the named queries the benchmarked endpoints run.

Run with the backend's interpreter from the backend folder (bench/run.py does):

    cd backend && .venv/bin/python ../bench/duckdb_raw.py --db /tmp/copy.db --n 50

Opens the database with the backend's own `Database` (same memory_limit/threads defaults as
the service) and times `run_query(cursor, name, params)` -- execute + fetch of every row --
`n` times per query after one untimed warm-up run, on one thread, with no HTTP, no spans and
no metrics export. Prints one JSON object {label: {"query", "p50_ms", "p95_ms", "runs",
"rows"}}: a label per benchmarked request (the same named query can serve several, e.g.
`flight_list` for the first page with and without filters and for page 21).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# The backend package, when run as a script from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backend"))
from api.db.database import Database, run_query

FLIGHT_IDS = 336_776
_SORT_KEY = ("year", "month", "day", "sched_dep_time", "id")
_NO_CURSOR = {f"after_{key}": None for key in _SORT_KEY}
PAGE = 50  # the API's default limit; it asks for one row more (api/routes/flights.py)


def _list_params(origin: str | None, carrier: str | None) -> dict[str, Any]:
    return {
        "origin": origin,
        "dest": None,
        "carrier": carrier,
        "date_from": None,
        "date_to": None,
        "min_dep_delay": None,
        "min_arr_delay": None,
        "cancelled": None,
        "hour": None,
        "limit": PAGE + 1,
        **_NO_CURSOR,
    }


def later_page(cursor: Any, first: dict[str, Any], page: int) -> dict[str, Any]:
    """The parameters of page `page` (1 = first), found by walking the pages as the API does."""
    params = dict(first)
    for _ in range(page - 1):
        rows = run_query(cursor, "flight_list", params).dicts()
        last = rows[PAGE - 1]
        params.update({f"after_{key}": last[key] for key in _SORT_KEY})
    return params


def queries(cursor: Any, max_id: int) -> dict[str, tuple[str, Any]]:
    """label -> (named query, parameters factory): what the benchmarked requests run."""
    jfk_ua = _list_params("JFK", "UA")
    page21 = later_page(cursor, jfk_ua, 21)
    return {
        # The stats statements take the year alone (api/routes/stats.py).
        "stats_carriers": ("stats_carriers", lambda: {"year": None}),
        "stats_daily": ("stats_daily", lambda: {"year": None}),
        "stats_hours": ("stats_hours", lambda: {"year": None}),
        "stats_destinations": ("stats_destinations", lambda: {"year": None}),
        "stats_weather": ("stats_weather", lambda: {"year": None}),
        "flight_list": ("flight_list", lambda: jfk_ua),
        "flight_list (no filter)": ("flight_list", lambda: _list_params(None, None)),
        "flight_list (page 21)": ("flight_list", lambda: page21),
        "flight_get": ("flight_get", lambda: {"id": random.randint(1, max_id)}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--max-id", type=int, default=FLIGHT_IDS)
    args = parser.parse_args()
    database = Database.open(args.db)
    results: dict[str, dict[str, Any]] = {}
    try:
        with database.session() as cursor:
            for label, (name, params) in queries(cursor, args.max_id).items():
                rows = len(run_query(cursor, name, params()).rows)  # warm-up, untimed
                times = []
                for _ in range(args.n):
                    p = params()
                    started = time.perf_counter()
                    run_query(cursor, name, p)
                    times.append((time.perf_counter() - started) * 1000)
                cuts = statistics.quantiles(times, n=100, method="inclusive")
                results[label] = {
                    "query": name,
                    "p50_ms": round(statistics.median(times), 3),
                    "p95_ms": round(cuts[94], 3),
                    "runs": args.n,
                    "rows": rows,
                }
    finally:
        database.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
