-- Every load of the demo data, so that start-up loads it into a database only once: an
-- operator who empties the flights table for their own data must not get it back on restart.
CREATE TABLE IF NOT EXISTS demo_data_loads (
    loaded_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    flights BIGINT NOT NULL
);
-- Databases created before this table: flights already there count as loaded.
INSERT INTO demo_data_loads (flights)
SELECT count(*) FROM flights HAVING count(*) > 0;
