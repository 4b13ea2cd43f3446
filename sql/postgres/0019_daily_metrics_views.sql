-- One wide view per metric type of daily_metrics (long: a row per metric): a row per day
-- (and entity), a column per metric of transforms/columns.py (tests/test_metric_views.py
-- holds them equal). security_invoker: a reader sees through a view only the daily_metrics
-- rows its own grants and row security let it see, never the owner's.
CREATE VIEW daily_metrics_platform WITH (security_invoker = true) AS
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

CREATE VIEW daily_metrics_track WITH (security_invoker = true) AS
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

CREATE VIEW daily_metrics_record WITH (security_invoker = true) AS
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

CREATE VIEW daily_metrics_store WITH (security_invoker = true) AS
SELECT
    metric_date,
    CAST(entity_id AS BIGINT) AS store_id,
    max(metric_value) FILTER (WHERE metric_name = 'plays')         AS plays,
    max(metric_value) FILTER (WHERE metric_name = 'page_views')    AS page_views,
    max(metric_value) FILTER (WHERE metric_name = 'new_followers') AS new_followers
FROM daily_metrics
WHERE metric_type = 'store'
GROUP BY metric_date, entity_id;

CREATE VIEW daily_metrics_device WITH (security_invoker = true) AS
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

CREATE VIEW daily_metrics_recommendation WITH (security_invoker = true) AS
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

CREATE VIEW daily_metrics_model_quality WITH (security_invoker = true) AS
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

GRANT SELECT ON daily_metrics_platform, daily_metrics_track, daily_metrics_record,
    daily_metrics_store, daily_metrics_device, daily_metrics_recommendation,
    daily_metrics_model_quality TO service_role, rotation_pipeline;
