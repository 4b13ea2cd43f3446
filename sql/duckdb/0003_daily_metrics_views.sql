-- The wide views of daily_metrics, as sql/postgres/0019_daily_metrics_views.sql (a row per
-- day and entity, a column per metric), for the replay files.
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
