-- Snapshot: store managers of the kept users ($1 = every user, else only the ids in $2).
SELECT id, store_id, user_id, created_at
FROM store_managers
WHERE $1 OR user_id IN (SELECT unnest(CAST($2 AS BIGINT[])))
