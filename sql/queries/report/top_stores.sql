-- Report: the $2 most played stores of day $1, with their other metrics of that day.
SELECT s.id, s.name, s.city,
       coalesce(max(m.metric_value) FILTER (WHERE m.metric_name = 'plays'), 0)         AS plays,
       coalesce(max(m.metric_value) FILTER (WHERE m.metric_name = 'page_views'), 0)    AS page_views,
       coalesce(max(m.metric_value) FILTER (WHERE m.metric_name = 'new_followers'), 0) AS new_followers
FROM daily_metrics AS m
JOIN stores AS s ON CAST(s.id AS TEXT) = m.entity_id
WHERE m.metric_date = $1 AND m.metric_type = 'store'
GROUP BY s.id, s.name, s.city
ORDER BY plays DESC, page_views DESC, s.id
LIMIT $2
