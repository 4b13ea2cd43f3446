INSERT INTO performance_metrics (job_id, run_id, stage, started_at, duration_ms, rows_in,
                                 rows_out, peak_rss_bytes, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
