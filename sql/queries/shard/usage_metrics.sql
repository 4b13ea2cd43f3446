-- One shard's usage events in the run's window [$1, $2): users $3 to $4 (inclusive), and
-- with $5 the anonymous events (user_id NULL: their home shard).
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
  AND ((user_id BETWEEN $3 AND $4) OR ($5 AND user_id IS NULL))
