-- The latest tuned parameters and the fingerprint of the data they were chosen on.
SELECT id, run_id, run_date, model_version, CAST(params AS VARCHAR) AS params,
       validation_ndcg, default_ndcg, candidates, users, items, interactions, density,
       tuned_at
FROM model_tuning
ORDER BY tuned_at DESC, id DESC
LIMIT 1
