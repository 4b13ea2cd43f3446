SELECT id, collection_id, record_id, added_at
FROM user_collection_items
