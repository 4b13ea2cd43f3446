-- Every partition of the event tables, its range and its rows (the planner's estimate).
SELECT
    t.table_name,
    p.partition_name,
    p.lower_bound,
    p.upper_bound,
    p.is_default,
    greatest(c.reltuples, 0)::bigint AS estimated_rows
FROM unnest(ARRAY['play_history', 'usage_metrics']) AS t (table_name)
CROSS JOIN LATERAL event_partitions(t.table_name) AS p
JOIN pg_class AS c ON c.oid = format('public.%I', p.partition_name)::regclass
ORDER BY t.table_name, p.is_default, p.lower_bound NULLS FIRST
