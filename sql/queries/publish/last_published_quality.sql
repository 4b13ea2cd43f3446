-- The nDCG@10 of the last nightly run that published (the quality gate's reference).
SELECT CAST(result -> 'quality' ->> 'ndcg_at_10' AS DOUBLE PRECISION) AS ndcg_at_10
FROM jobs
WHERE job_type = 'nightly'
  AND job_status IN ('completed', 'completed_with_warnings')
  AND result ->> 'published' = 'true'
  AND result -> 'quality' ->> 'ndcg_at_10' IS NOT NULL
ORDER BY completed_at DESC, id DESC
LIMIT 1
