-- A user's unexpired published lists ($1 user, $2 list or NULL for all, $3 limit per list).
WITH ranked AS (
    SELECT user_id, list_name, item_type, item_id, item_key, score, confidence, rank,
           CAST(reason AS TEXT) AS reason, model_version, expires_at
    FROM recommendation_data
    WHERE user_id = $1
      AND (CAST($2 AS TEXT) IS NULL OR list_name = CAST($2 AS TEXT))
      AND rank <= $3
      AND expires_at > now()
)
SELECT * FROM ranked ORDER BY list_name, rank
