-- Diff: the latest metric date present in both runs' daily_metrics (base and head attached).
SELECT max(b.metric_date) AS metric_date
FROM (SELECT DISTINCT metric_date FROM base.daily_metrics) AS b
JOIN (SELECT DISTINCT metric_date FROM head.daily_metrics) AS h USING (metric_date)
