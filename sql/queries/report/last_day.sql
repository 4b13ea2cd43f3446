-- Report: the latest day with platform metrics (the default end of the report's range).
SELECT max(metric_date) AS last_day FROM daily_metrics WHERE metric_type = 'platform'
