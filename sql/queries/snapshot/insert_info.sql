-- Record what a snapshot copied, from where (redacted URL) and when.
INSERT INTO snapshot_info
    (source, taken_at, since, until, sample_fraction, seed, sampled_users, row_counts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
