-- Reference tables of the nycflights13 data set. No foreign keys from flights: several real
-- destinations are absent from airports, and carriers are validated by the API instead.
CREATE TABLE IF NOT EXISTS airlines (
    carrier VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS airports (
    faa VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    lat DOUBLE,
    lon DOUBLE,
    alt INTEGER,       -- feet
    tz INTEGER,        -- hours offset from UTC
    dst VARCHAR,
    tzone VARCHAR      -- IANA time zone name
);

CREATE TABLE IF NOT EXISTS planes (
    tailnum VARCHAR PRIMARY KEY,
    year INTEGER,
    type VARCHAR,
    manufacturer VARCHAR,
    model VARCHAR,
    engines INTEGER,
    seats INTEGER,
    speed INTEGER,
    engine VARCHAR
);

CREATE TABLE IF NOT EXISTS weather (
    origin VARCHAR NOT NULL,
    year INTEGER,
    month INTEGER,
    day INTEGER,
    hour INTEGER,
    temp DOUBLE,
    dewp DOUBLE,
    humid DOUBLE,
    wind_dir INTEGER,
    wind_speed DOUBLE,
    wind_gust DOUBLE,
    precip DOUBLE,
    pressure DOUBLE,
    visib DOUBLE,
    time_hour TIMESTAMP NOT NULL  -- UTC
);
