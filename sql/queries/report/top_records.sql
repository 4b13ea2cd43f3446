-- Report: the $2 most played records of day $1, with their other metrics of that day.
SELECT r.id, r.artist, r.title,
       coalesce(max(m.metric_value) FILTER (WHERE m.metric_name = 'plays'), 0)      AS plays,
       coalesce(max(m.metric_value) FILTER (WHERE m.metric_name = 'listeners'), 0)  AS listeners,
       coalesce(max(m.metric_value) FILTER (WHERE m.metric_name = 'completes'), 0)  AS completes,
       coalesce(max(m.metric_value) FILTER (WHERE m.metric_name = 'skips'), 0)      AS skips,
       coalesce(max(m.metric_value) FILTER (WHERE m.metric_name = 'favorites'), 0)  AS favorites
FROM daily_metrics AS m
JOIN records AS r ON CAST(r.id AS TEXT) = m.entity_id
WHERE m.metric_date = $1 AND m.metric_type = 'record'
GROUP BY r.id, r.artist, r.title
ORDER BY plays DESC, listeners DESC, r.id
LIMIT $2
