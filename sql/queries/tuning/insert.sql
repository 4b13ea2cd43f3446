-- One tune run's choice (flows/tune.py).
INSERT INTO model_tuning (run_id, run_date, model_version, params, validation_ndcg,
                          default_ndcg, candidates, users, items, interactions, density,
                          tuned_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING id
