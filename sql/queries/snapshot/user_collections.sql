-- Snapshot: collections of the kept users ($1 = every user, else only the ids in $2).
SELECT id, user_id, name, description, is_public, item_count, created_at, updated_at
FROM user_collections
WHERE $1 OR user_id IN (SELECT unnest(CAST($2 AS BIGINT[])))
