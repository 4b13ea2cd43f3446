-- Report: the last $1 jobs (flow runs), newest first, with their counts.
SELECT id, CAST(job_type AS TEXT) AS job_type, CAST(job_status AS TEXT) AS job_status,
       started_at, completed_at, items_processed, items_quarantined, error_message
FROM jobs
ORDER BY coalesce(started_at, created_at) DESC, id DESC
LIMIT $1
