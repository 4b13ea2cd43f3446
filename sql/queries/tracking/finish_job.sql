UPDATE jobs
SET job_status = $2, progress_percent = COALESCE($3, progress_percent), progress_message = $4, result = $5,
    error_message = $6, items_processed = $7, items_quarantined = $8,
    completed_at = $9, heartbeat_at = $9, updated_at = $9
WHERE id = $1
