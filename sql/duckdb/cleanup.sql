-- DuckDB's equivalent of cleanup_old_analytics_data($1 retention days, $2 now): one
-- statement per table, each returning the rows it removed. Separated by ';' lines.
DELETE FROM recommendation_data WHERE expires_at < $2 RETURNING 'recommendation_data';
DELETE FROM content_similarity WHERE expires_at < $2 RETURNING 'content_similarity';
DELETE FROM usage_metrics
WHERE occurred_at < $2 - to_days(CAST($1 AS INTEGER))
  AND CAST(occurred_at AS DATE) < (SELECT max(metric_date) FROM daily_metrics)
RETURNING 'usage_metrics';
DELETE FROM job_logs WHERE created_at < $2 - to_days(CAST($1 AS INTEGER)) RETURNING 'job_logs';
DELETE FROM performance_metrics WHERE created_at < $2 - to_days(CAST($1 AS INTEGER))
RETURNING 'performance_metrics';
