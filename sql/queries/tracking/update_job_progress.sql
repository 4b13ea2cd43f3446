UPDATE jobs
SET progress_percent = $2, progress_message = $3, items_processed = $4,
    items_quarantined = $5, heartbeat_at = $6, updated_at = $6
WHERE id = $1
