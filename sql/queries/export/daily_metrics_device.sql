-- Export: the wide view daily_metrics_device for the days in [$1, $2].
SELECT * FROM daily_metrics_device
WHERE metric_date BETWEEN $1 AND $2
ORDER BY metric_date, device_type
