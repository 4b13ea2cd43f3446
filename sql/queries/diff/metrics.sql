-- Diff: every daily_metrics row of date $1 in either run, joined on the unique key, with its
-- status ('same' | 'changed' | 'only_base' | 'only_head'); $2 is the absolute tolerance.
SELECT
    coalesce(b.metric_type, h.metric_type)   AS metric_type,
    coalesce(b.entity_type, h.entity_type)   AS entity_type,
    coalesce(b.entity_id, h.entity_id)       AS entity_id,
    coalesce(b.metric_name, h.metric_name)   AS metric_name,
    b.metric_value                           AS base_value,
    h.metric_value                           AS head_value,
    h.metric_value - b.metric_value          AS delta,
    CASE WHEN b.metric_value <> 0
         THEN (h.metric_value - b.metric_value) / abs(b.metric_value) END AS relative_change,
    CASE WHEN h.metric_value IS NULL THEN 'only_base'
         WHEN b.metric_value IS NULL THEN 'only_head'
         WHEN abs(h.metric_value - b.metric_value) > $2 THEN 'changed'
         ELSE 'same' END                     AS status
FROM (SELECT * FROM base.daily_metrics WHERE metric_date = $1) AS b
FULL OUTER JOIN (SELECT * FROM head.daily_metrics WHERE metric_date = $1) AS h
  ON b.metric_type = h.metric_type AND b.entity_type = h.entity_type
 AND b.entity_id = h.entity_id AND b.metric_name = h.metric_name
