SELECT id, CAST(role AS TEXT) AS role, is_active, created_at
FROM users
