-- Jobs left 'running' by a process that died. A living run holds its job's advisory lock on
-- its bookkeeping connection (tracking/claim_job), so a running job whose lock is free has no
-- process: it is closed now, 'completed_with_warnings' when its publish had committed (the
-- publish records it in its own transaction: tracking/publish_committed), else 'failed'.
-- $1: now. Returns each closed job's id and status.
UPDATE jobs AS j
   SET job_status = CASE WHEN coalesce((j.result ->> 'published')::boolean, false)
                         THEN 'completed_with_warnings'::job_status
                         ELSE 'failed'::job_status END,
       error_message = CASE WHEN coalesce((j.result ->> 'published')::boolean, false)
                            THEN 'its process died after the publish committed: the results are live'
                            ELSE 'its process died before publishing (found by a later run)' END,
       completed_at = $1, updated_at = $1
 WHERE j.job_status = 'running'
   AND pg_try_advisory_xact_lock(hashtext('rotation.jobs'), (j.id % 2147483647)::int)
RETURNING j.id, j.job_status::text
