-- Snapshot: users ($1 = every user, else only the ids in $2).
SELECT id, email, username, display_name, CAST(role AS TEXT) AS role, is_active,
       created_at, updated_at, last_seen_at
FROM users
WHERE $1 OR id IN (SELECT unnest(CAST($2 AS BIGINT[])))
