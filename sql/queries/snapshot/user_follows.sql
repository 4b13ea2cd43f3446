-- Snapshot: follows of the kept users ($1 = every user, else only the ids in $2).
SELECT id, user_id, store_id, created_at
FROM user_follows
WHERE $1 OR user_id IN (SELECT unnest(CAST($2 AS BIGINT[])))
