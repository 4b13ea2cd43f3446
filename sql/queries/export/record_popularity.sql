-- Export: the popularity list the API falls back on.
SELECT record_id, plays, genres, in_stock, run_id, computed_at
FROM record_popularity
ORDER BY plays DESC, record_id
