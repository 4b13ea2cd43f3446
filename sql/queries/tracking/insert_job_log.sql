INSERT INTO job_logs (job_id, log_level, stage, message, details, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
