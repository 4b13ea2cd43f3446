-- Export: the wide view daily_metrics_recommendation for the days in [$1, $2].
SELECT * FROM daily_metrics_recommendation
WHERE metric_date BETWEEN $1 AND $2
ORDER BY metric_date
