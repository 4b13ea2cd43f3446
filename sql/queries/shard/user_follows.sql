-- One shard's follows: users $1 to $2 (inclusive), and with $3 those without a user.
SELECT id, user_id, store_id, created_at
FROM user_follows
WHERE (user_id BETWEEN $1 AND $2) OR ($3 AND user_id IS NULL)
