-- Usage events in the run's window [$1, $2).
SELECT
    id,
    user_id,
    CAST(session_id AS TEXT)   AS session_id,
    event_type,
    entity_type,
    entity_id,
    occurred_at
FROM usage_metrics
WHERE occurred_at >= $1 AND occurred_at < $2
