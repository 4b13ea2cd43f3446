-- One shard's collection items: those of its collections (users $1 to $2, inclusive); with
-- $3 also the items of collections without a user or of no collection at all.
SELECT i.id, i.collection_id, i.record_id, i.added_at
FROM user_collection_items AS i
LEFT JOIN user_collections AS c ON c.id = i.collection_id
WHERE (c.user_id BETWEEN $1 AND $2) OR ($3 AND c.user_id IS NULL)
