-- The replica's side of the freshness guard: is it a standby, of which cluster, how far has
-- it replayed, how many bytes short of $1 (the primary's position) is that, is replay paused.
-- Not pg_last_xact_replay_timestamp(): it stalls while the primary is idle.
SELECT
    pg_is_in_recovery()                                       AS in_recovery,
    (SELECT system_identifier FROM pg_control_system())::text AS cluster,
    pg_last_wal_replay_lsn()::text                            AS replayed,
    pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())     AS behind,
    CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS paused
