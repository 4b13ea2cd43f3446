-- One shard's plays in the run's window [$1, $2): users $3 to $4 (inclusive), and with $5
-- the plays without a user. Read through the (user_id, played_at) index: each shard reads
-- its own rows only. Portable: runs on Postgres (ADBC) and DuckDB.
SELECT
    id,
    user_id,
    track_id,
    CAST(action AS TEXT)                           AS action,
    played_at,
    CAST(duration_played_ms AS BIGINT)             AS duration_played_ms,
    CAST(completion_percentage AS DOUBLE PRECISION) AS completion_percentage,
    CAST(session_id AS TEXT)                       AS session_id,
    device_type,
    source
FROM play_history
WHERE played_at >= $1 AND played_at < $2
  AND ((user_id BETWEEN $3 AND $4) OR ($5 AND user_id IS NULL))
