-- Snapshot: usage events in [$1, $2) of the kept users ($3 = every user, anonymous events
-- included; else only the ids in $4, anonymous events left out).
SELECT id, user_id, session_id, event_type, entity_type, entity_id,
       CAST(properties AS TEXT) AS properties, occurred_at, created_at
FROM usage_metrics
WHERE occurred_at >= $1 AND occurred_at < $2
  AND ($3 OR user_id IN (SELECT unnest(CAST($4 AS BIGINT[]))))
