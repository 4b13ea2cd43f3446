-- Diff: each run's model-quality figures of its latest evaluated date on or before $1.
WITH b AS (
    SELECT metric_date, metric_name, metric_value FROM base.daily_metrics
    WHERE metric_type = 'model_quality' AND metric_date = (
        SELECT max(metric_date) FROM base.daily_metrics
        WHERE metric_type = 'model_quality' AND metric_date <= $1)
), h AS (
    SELECT metric_date, metric_name, metric_value FROM head.daily_metrics
    WHERE metric_type = 'model_quality' AND metric_date = (
        SELECT max(metric_date) FROM head.daily_metrics
        WHERE metric_type = 'model_quality' AND metric_date <= $1)
)
SELECT coalesce(b.metric_name, h.metric_name) AS metric_name,
       b.metric_date AS base_date, b.metric_value AS base_value,
       h.metric_date AS head_date, h.metric_value AS head_value,
       h.metric_value - b.metric_value AS delta
FROM b FULL OUTER JOIN h ON b.metric_name = h.metric_name
ORDER BY metric_name
