-- Snapshot: favorites of the kept users ($1 = every user, else only the ids in $2).
SELECT id, user_id, favoritable_type, favoritable_id, created_at
FROM favorites
WHERE $1 OR user_id IN (SELECT unnest(CAST($2 AS BIGINT[])))
