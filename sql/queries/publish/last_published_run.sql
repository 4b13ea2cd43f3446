-- What a run's lists are checked against before they replace the live ones
-- (flows/stages/publish.py): the last nightly run that published them, its nDCG@10 (null:
-- it could not measure its quality) and the users its lists covered (null: a run from
-- before users were counted), and the nDCG@10 of the last published run that measured it
-- (the quality gate's reference).
WITH published AS (
    SELECT id,
           completed_at,
           CAST(result -> 'quality' ->> 'ndcg_at_10' AS DOUBLE PRECISION) AS ndcg_at_10,
           CAST(result ->> 'users_served' AS BIGINT) AS users_served
    FROM jobs
    WHERE job_type = 'nightly'
      AND job_status IN ('completed', 'completed_with_warnings')
      AND result ->> 'published' = 'true'
),

last_run AS (
    SELECT * FROM published ORDER BY completed_at DESC, id DESC LIMIT 1
),

last_measured AS (
    SELECT ndcg_at_10 FROM published
    WHERE ndcg_at_10 IS NOT NULL
    ORDER BY completed_at DESC, id DESC LIMIT 1
)

SELECT last_run.ndcg_at_10,
       last_run.users_served,
       (SELECT ndcg_at_10 FROM last_measured) AS reference_ndcg_at_10
FROM last_run
