-- Export: the published lists, in lookup order (reason as JSON text).
SELECT user_id, list_name, rank, data_type, item_type, item_id, item_key, score, confidence,
       CAST(reason AS TEXT) AS reason, model_version, run_id, created_at, expires_at
FROM recommendation_data
ORDER BY user_id, list_name, rank
