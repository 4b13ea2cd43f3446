-- Snapshot: items of the kept users' collections ($1 = every user, else only the ids in $2).
SELECT id, collection_id, record_id, notes, added_at
FROM user_collection_items
WHERE collection_id IN (SELECT id FROM user_collections WHERE $1 OR user_id IN (SELECT unnest(CAST($2 AS BIGINT[]))))
