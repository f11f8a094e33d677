-- Flights. The primary key index serves GET/PATCH/DELETE by id; DuckDB scans with zone maps
-- for everything else, so no further indexes.
CREATE TABLE IF NOT EXISTS flights (
    id BIGINT PRIMARY KEY,
    year INTEGER NOT NULL,
    month INTEGER NOT NULL,
    day INTEGER NOT NULL,
    dep_time INTEGER,             -- HHMM local, NULL when cancelled
    sched_dep_time INTEGER NOT NULL,
    dep_delay INTEGER,            -- minutes
    arr_time INTEGER,
    sched_arr_time INTEGER NOT NULL,
    arr_delay INTEGER,            -- minutes
    carrier VARCHAR NOT NULL,
    flight INTEGER NOT NULL,
    tailnum VARCHAR,
    origin VARCHAR NOT NULL,
    dest VARCHAR NOT NULL,
    air_time INTEGER,             -- minutes
    distance INTEGER,             -- miles
    hour INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    time_hour TIMESTAMP NOT NULL  -- scheduled hour, UTC
);

-- Next id to hand out per table (see the flight_next_id query).
CREATE TABLE IF NOT EXISTS id_counters (
    name VARCHAR PRIMARY KEY,
    next_id BIGINT NOT NULL
);

INSERT INTO id_counters (name, next_id) VALUES ('flights', 1) ON CONFLICT DO NOTHING;
