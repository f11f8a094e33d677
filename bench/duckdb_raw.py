"""Raw in-process DuckDB time of the named queries the benchmarked endpoints run.

Run with the backend's interpreter from the backend folder (bench/run.py does):

    cd backend && .venv/bin/python ../bench/duckdb_raw.py --db /tmp/copy.db --n 50

Opens the database with the backend's own `Database` (same memory_limit/threads defaults as
the service) and times `run_query(cursor, name, params)` -- execute + fetch of every row --
`n` times per query after one untimed warm-up run, on one thread, with no HTTP, no spans and
no metrics export. Prints one JSON object {name: {"p50_ms", "p95_ms", "runs", "rows"}}.
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
_NO_CURSOR = dict.fromkeys(
    ("after_year", "after_month", "after_day", "after_sched_dep_time", "after_id")
)

# The parameters the API passes for the benchmarked requests (see api/routes/*.py).
QUERIES: dict[str, Any] = {
    "stats_carriers": lambda: {"origin": None, "month": None, "year": None},
    "stats_daily": lambda: {"origin": None, "carrier": None, "year": None},
    "stats_hours": lambda: {"origin": None, "month": None, "year": None},
    "stats_destinations": lambda: {"origin": None, "month": None, "year": None, "limit": 15},
    "stats_weather": lambda: {"origin": None, "month": None, "year": None},
    "flight_list": lambda: {
        "origin": "JFK",
        "dest": None,
        "carrier": "UA",
        "date_from": None,
        "date_to": None,
        "min_dep_delay": None,
        "limit": 51,
        **_NO_CURSOR,
    },
    "flight_get": lambda: {"id": random.randint(1, FLIGHT_IDS)},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    database = Database.open(args.db)
    results: dict[str, dict[str, Any]] = {}
    try:
        with database.session() as cursor:
            for name, params in QUERIES.items():
                rows = len(run_query(cursor, name, params()).rows)  # warm-up, untimed
                times = []
                for _ in range(args.n):
                    p = params()
                    started = time.perf_counter()
                    run_query(cursor, name, p)
                    times.append((time.perf_counter() - started) * 1000)
                cuts = statistics.quantiles(times, n=100, method="inclusive")
                results[name] = {
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
