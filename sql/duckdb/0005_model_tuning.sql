-- The tune flow's chosen parameters and the data they were tuned on
-- (sql/postgres/0022_model_tuning.sql).
CREATE SEQUENCE IF NOT EXISTS seq_model_tuning;
CREATE TABLE IF NOT EXISTS model_tuning (
    id                   BIGINT PRIMARY KEY DEFAULT nextval('seq_model_tuning'),
    run_id               VARCHAR NOT NULL,
    run_date             DATE NOT NULL,
    model_version        VARCHAR NOT NULL,
    params               JSON NOT NULL,
    validation_ndcg      DOUBLE,
    default_ndcg         DOUBLE,
    candidates           INTEGER NOT NULL DEFAULT 0,
    users                BIGINT NOT NULL,
    items                BIGINT NOT NULL,
    interactions         BIGINT NOT NULL,
    density              DOUBLE NOT NULL,
    tuned_at             TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
