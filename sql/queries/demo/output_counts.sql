-- Rows in each table the pipeline writes.
SELECT 'daily_metrics' AS table_name, count(*) AS row_count FROM daily_metrics
UNION ALL SELECT 'content_similarity', count(*) FROM content_similarity
UNION ALL SELECT 'recommendation_data', count(*) FROM recommendation_data
UNION ALL SELECT 'jobs', count(*) FROM jobs
UNION ALL SELECT 'job_logs', count(*) FROM job_logs
UNION ALL SELECT 'performance_metrics', count(*) FROM performance_metrics
