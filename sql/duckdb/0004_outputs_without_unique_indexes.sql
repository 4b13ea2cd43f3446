-- The published tables without their UNIQUE constraints. DuckDB keeps a constraint's ART
-- index in memory whole: publishing profile L's 14M recommendation rows needed more than
-- 1 GB for it alone, past the memory bound of a replay on a laptop (ROTATION_DUCKDB_MEMORY_LIMIT).
-- The rows stay unique by construction: a run deletes what it replaces in the transaction
-- that inserts it, and its frames are unique on these keys (tests/test_nightly_flow.py and
-- test_backfill_flow.py check them on both backends); PostgreSQL keeps the constraints.
-- Lookups need no index: rows are written in lookup order, so DuckDB's min/max zone maps
-- skip every row group but the ones holding the key.
CREATE TABLE daily_metrics_rebuilt (
    metric_date   DATE NOT NULL,
    metric_type   VARCHAR NOT NULL,
    entity_type   VARCHAR NOT NULL,
    entity_id     VARCHAR NOT NULL,
    metric_name   VARCHAR NOT NULL,
    metric_value  DOUBLE NOT NULL,
    run_id        VARCHAR,
    computed_at   TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
INSERT INTO daily_metrics_rebuilt SELECT * FROM daily_metrics;

CREATE TABLE content_similarity_rebuilt (
    source_type      VARCHAR NOT NULL,
    source_id        BIGINT NOT NULL,
    target_type      VARCHAR NOT NULL,
    target_id        BIGINT NOT NULL,
    similarity_type  VARCHAR NOT NULL,
    score            DOUBLE NOT NULL,
    rank             INTEGER NOT NULL,
    model_version    VARCHAR,
    run_id           VARCHAR,
    computed_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    expires_at       TIMESTAMPTZ
);
INSERT INTO content_similarity_rebuilt SELECT * FROM content_similarity;

CREATE TABLE recommendation_data_rebuilt (
    user_id        BIGINT NOT NULL,
    data_type      VARCHAR NOT NULL,
    list_name      VARCHAR NOT NULL,
    item_type      VARCHAR NOT NULL,
    item_id        BIGINT,
    item_key       VARCHAR,
    score          DOUBLE NOT NULL,
    confidence     DOUBLE NOT NULL,
    rank           INTEGER NOT NULL,
    reason         JSON,
    model_version  VARCHAR NOT NULL,
    run_id         VARCHAR,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    expires_at     TIMESTAMPTZ NOT NULL
);
INSERT INTO recommendation_data_rebuilt SELECT * FROM recommendation_data;

-- the wide views (0003) read daily_metrics: dropped first, then made again as they were
DROP VIEW daily_metrics_platform;
DROP VIEW daily_metrics_track;
DROP VIEW daily_metrics_record;
DROP VIEW daily_metrics_store;
DROP VIEW daily_metrics_device;
DROP VIEW daily_metrics_recommendation;
DROP VIEW daily_metrics_model_quality;
DROP TABLE daily_metrics;
DROP TABLE content_similarity;
DROP TABLE recommendation_data;
ALTER TABLE daily_metrics_rebuilt RENAME TO daily_metrics;
ALTER TABLE content_similarity_rebuilt RENAME TO content_similarity;
ALTER TABLE recommendation_data_rebuilt RENAME TO recommendation_data;
CREATE OR REPLACE VIEW daily_metrics_platform AS
SELECT
    metric_date,
    max(metric_value) FILTER (WHERE metric_name = 'active_users')        AS active_users,
    max(metric_value) FILTER (WHERE metric_name = 'listeners')           AS listeners,
    max(metric_value) FILTER (WHERE metric_name = 'plays')               AS plays,
    max(metric_value) FILTER (WHERE metric_name = 'completes')           AS completes,
    max(metric_value) FILTER (WHERE metric_name = 'skips')               AS skips,
    max(metric_value) FILTER (WHERE metric_name = 'completion_rate')     AS completion_rate,
    max(metric_value) FILTER (WHERE metric_name = 'skip_rate')           AS skip_rate,
    max(metric_value) FILTER (WHERE metric_name = 'listening_seconds')   AS listening_seconds,
    max(metric_value) FILTER (WHERE metric_name = 'sessions')            AS sessions,
    max(metric_value) FILTER (WHERE metric_name = 'avg_session_seconds') AS avg_session_seconds,
    max(metric_value) FILTER (WHERE metric_name = 'new_users')           AS new_users,
    max(metric_value) FILTER (WHERE metric_name = 'favorites')           AS favorites,
    max(metric_value) FILTER (WHERE metric_name = 'collection_adds')     AS collection_adds,
    max(metric_value) FILTER (WHERE metric_name = 'follows')             AS follows,
    max(metric_value) FILTER (WHERE metric_name = 'page_views')          AS page_views
FROM daily_metrics
WHERE metric_type = 'platform'
GROUP BY metric_date;

CREATE OR REPLACE VIEW daily_metrics_track AS
SELECT
    metric_date,
    CAST(entity_id AS BIGINT) AS track_id,
    max(metric_value) FILTER (WHERE metric_name = 'plays')             AS plays,
    max(metric_value) FILTER (WHERE metric_name = 'completes')         AS completes,
    max(metric_value) FILTER (WHERE metric_name = 'skips')             AS skips,
    max(metric_value) FILTER (WHERE metric_name = 'listeners')         AS listeners,
    max(metric_value) FILTER (WHERE metric_name = 'listening_seconds') AS listening_seconds
FROM daily_metrics
WHERE metric_type = 'track'
GROUP BY metric_date, entity_id;

CREATE OR REPLACE VIEW daily_metrics_record AS
SELECT
    metric_date,
    CAST(entity_id AS BIGINT) AS record_id,
    max(metric_value) FILTER (WHERE metric_name = 'plays')             AS plays,
    max(metric_value) FILTER (WHERE metric_name = 'completes')         AS completes,
    max(metric_value) FILTER (WHERE metric_name = 'skips')             AS skips,
    max(metric_value) FILTER (WHERE metric_name = 'listeners')         AS listeners,
    max(metric_value) FILTER (WHERE metric_name = 'listening_seconds') AS listening_seconds,
    max(metric_value) FILTER (WHERE metric_name = 'page_views')        AS page_views,
    max(metric_value) FILTER (WHERE metric_name = 'favorites')         AS favorites
FROM daily_metrics
WHERE metric_type = 'record'
GROUP BY metric_date, entity_id;

CREATE OR REPLACE VIEW daily_metrics_store AS
SELECT
    metric_date,
    CAST(entity_id AS BIGINT) AS store_id,
    max(metric_value) FILTER (WHERE metric_name = 'plays')         AS plays,
    max(metric_value) FILTER (WHERE metric_name = 'page_views')    AS page_views,
    max(metric_value) FILTER (WHERE metric_name = 'new_followers') AS new_followers
FROM daily_metrics
WHERE metric_type = 'store'
GROUP BY metric_date, entity_id;

CREATE OR REPLACE VIEW daily_metrics_device AS
SELECT
    metric_date,
    entity_id AS device_type,
    max(metric_value) FILTER (WHERE metric_name = 'plays')             AS plays,
    max(metric_value) FILTER (WHERE metric_name = 'completes')         AS completes,
    max(metric_value) FILTER (WHERE metric_name = 'skips')             AS skips,
    max(metric_value) FILTER (WHERE metric_name = 'listeners')         AS listeners,
    max(metric_value) FILTER (WHERE metric_name = 'listening_seconds') AS listening_seconds
FROM daily_metrics
WHERE metric_type = 'device'
GROUP BY metric_date, entity_id;

CREATE OR REPLACE VIEW daily_metrics_recommendation AS
SELECT
    metric_date,
    max(metric_value) FILTER (WHERE metric_name = 'plays')          AS plays,
    max(metric_value) FILTER (WHERE metric_name = 'completes')      AS completes,
    max(metric_value) FILTER (WHERE metric_name = 'skips')          AS skips,
    max(metric_value) FILTER (WHERE metric_name = 'listeners')      AS listeners,
    max(metric_value) FILTER (WHERE metric_name = 'share_of_plays') AS share_of_plays
FROM daily_metrics
WHERE metric_type = 'recommendation'
GROUP BY metric_date;

CREATE OR REPLACE VIEW daily_metrics_model_quality AS
SELECT
    metric_date,
    entity_id AS model_version,
    max(metric_value) FILTER (WHERE metric_name = 'precision_at_10') AS precision_at_10,
    max(metric_value) FILTER (WHERE metric_name = 'recall_at_10')    AS recall_at_10,
    max(metric_value) FILTER (WHERE metric_name = 'ndcg_at_10')      AS ndcg_at_10,
    max(metric_value) FILTER (WHERE metric_name = 'coverage')        AS coverage
FROM daily_metrics
WHERE metric_type = 'model_quality'
GROUP BY metric_date, entity_id;
