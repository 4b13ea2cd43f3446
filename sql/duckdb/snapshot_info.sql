-- What a `rotation snapshot` copied into this DuckDB file, from where and when (one row).
-- `source` is the redacted URL: the password never reaches the file.
CREATE TABLE IF NOT EXISTS snapshot_info (
    source           VARCHAR NOT NULL,
    taken_at         TIMESTAMPTZ NOT NULL,
    since            DATE,
    until            DATE,
    sample_fraction  DOUBLE,
    seed             BIGINT,
    sampled_users    BIGINT,
    row_counts       JSON NOT NULL
);
