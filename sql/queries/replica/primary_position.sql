-- The freshness guard's target, on the primary: its WAL position now (every transaction
-- committed before the run started is below it) and its cluster, which a standby shares.
SELECT
    pg_current_wal_lsn()::text                             AS position,
    (SELECT system_identifier FROM pg_control_system())::text AS cluster
