-- A new running job for one flow run; returns its id.
INSERT INTO jobs (job_type, job_status, payload, run_id, flow_run_id, max_retries,
                  started_at, heartbeat_at, created_at, updated_at)
VALUES ($1, 'running', $2, $3, $4, $5, $6, $6, $6, $6)
RETURNING id
