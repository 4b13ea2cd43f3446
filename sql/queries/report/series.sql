-- Report: the charted daily_metrics of [$1, $2]: platform activity, recommendation traffic,
-- model quality.
SELECT metric_date, metric_type, metric_name, metric_value
FROM daily_metrics
WHERE metric_date BETWEEN $1 AND $2
  AND ((metric_type = 'platform'
        AND metric_name IN ('active_users', 'plays', 'completion_rate', 'skip_rate'))
    OR (metric_type = 'recommendation' AND metric_name IN ('plays', 'share_of_plays'))
    OR (metric_type = 'model_quality' AND metric_name IN ('ndcg_at_10', 'precision_at_10')))
ORDER BY metric_date, metric_type, metric_name
