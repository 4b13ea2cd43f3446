-- DuckDB's tracking/fail_dead_jobs: one process at a time holds a DuckDB file for writing,
-- so every job still 'running' when a run starts has no process. $1: now.
UPDATE jobs
   SET job_status = CASE WHEN coalesce(CAST(json_extract(result, '$.published') AS BOOLEAN), false)
                         THEN 'completed_with_warnings' ELSE 'failed' END,
       error_message = CASE WHEN coalesce(CAST(json_extract(result, '$.published') AS BOOLEAN), false)
                            THEN 'its process died after the publish committed: the results are live'
                            ELSE 'its process died before publishing (found by a later run)' END,
       completed_at = $1, updated_at = $1
 WHERE job_status = 'running'
RETURNING id, job_status
