-- Snapshot: plays in [$1, $2) of the kept users ($3 = every user, else only the ids in $4).
SELECT id, user_id, track_id, CAST(action AS TEXT) AS action, played_at,
       duration_played_ms, completion_percentage, session_id, device_type, source, created_at
FROM play_history
WHERE played_at >= $1 AND played_at < $2
  AND ($3 OR user_id IN (SELECT unnest(CAST($4 AS BIGINT[]))))
