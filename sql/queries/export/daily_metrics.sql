-- Export: daily_metrics (one row per metric) for the days in [$1, $2], run columns aside.
SELECT metric_date, metric_type, entity_type, entity_id, metric_name, metric_value
FROM daily_metrics
WHERE metric_date BETWEEN $1 AND $2
ORDER BY metric_date, metric_type, entity_type, entity_id, metric_name
