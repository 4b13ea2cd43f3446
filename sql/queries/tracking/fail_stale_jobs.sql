-- A job still 'running' whose heartbeat stopped before $1 died with its process: mark it failed.
UPDATE jobs
SET job_status = 'failed', error_message = $2, completed_at = $3, updated_at = $3
WHERE job_status = 'running' AND heartbeat_at < $1
RETURNING id
