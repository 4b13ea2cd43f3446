SELECT id, user_id, favoritable_type, favoritable_id, created_at
FROM favorites
