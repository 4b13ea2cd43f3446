SELECT id, user_id, store_id, created_at
FROM user_follows
