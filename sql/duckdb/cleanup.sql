-- DuckDB's equivalent of cleanup_old_analytics_data: the caller sets the variables
-- cleanup_now (timestamptz) and cleanup_cutoff (now - retention) first. One statement per
-- table, each returning a row per deleted row.
DELETE FROM recommendation_data WHERE expires_at < getvariable('cleanup_now')
RETURNING 'recommendation_data';
DELETE FROM content_similarity WHERE expires_at < getvariable('cleanup_now')
RETURNING 'content_similarity';
DELETE FROM usage_metrics
WHERE occurred_at < getvariable('cleanup_cutoff')
  AND CAST(occurred_at AS DATE) < (SELECT max(metric_date) FROM daily_metrics)
RETURNING 'usage_metrics';
DELETE FROM job_logs WHERE created_at < getvariable('cleanup_cutoff') RETURNING 'job_logs';
DELETE FROM performance_metrics WHERE created_at < getvariable('cleanup_cutoff')
RETURNING 'performance_metrics';
