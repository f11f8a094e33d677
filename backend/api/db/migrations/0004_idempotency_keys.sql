-- Writes sent with an Idempotency-Key header (api/idempotency.py): the key, what the request
-- was (a hash of method, path and body) and the answer it got, stored in the transaction of
-- the write itself, so a retried write is applied once and answered the same way.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    idempotency_key VARCHAR PRIMARY KEY,
    fingerprint VARCHAR NOT NULL,     -- sha256 hex of method, path and canonical JSON body
    status_code INTEGER NOT NULL,     -- the stored answer ...
    body VARCHAR NOT NULL,            -- ... its JSON body
    location VARCHAR,                 -- ... and Location header (creates)
    created_at DOUBLE NOT NULL        -- Unix time (seconds); expired after IDEMPOTENCY_KEY_TTL
);
