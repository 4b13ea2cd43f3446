-- The slice of daily_metrics a run replaces: its dates ($1) × its metric types ($2).
DELETE FROM daily_metrics
WHERE metric_date = ANY($1) AND metric_type = ANY($2)
