SELECT id, user_id, created_at
FROM user_collections
