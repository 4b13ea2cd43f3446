-- Plays in the run's window [$1, $2). Portable: runs on Postgres (ADBC) and DuckDB.
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
