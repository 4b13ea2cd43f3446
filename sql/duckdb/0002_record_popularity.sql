-- The popularity list the pipeline publishes for the API's cold-start fallback
-- (sql/postgres/0011_record_popularity.sql).
CREATE TABLE IF NOT EXISTS record_popularity (
    record_id    BIGINT PRIMARY KEY,
    plays        DOUBLE NOT NULL,
    genres       VARCHAR[] NOT NULL DEFAULT [],
    in_stock     BOOLEAN NOT NULL DEFAULT FALSE,
    run_id       VARCHAR,
    computed_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
