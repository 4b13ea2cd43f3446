-- The snapshot of the first read connection, for the others to share (SET TRANSACTION
-- SNAPSHOT): valid while that connection's REPEATABLE READ transaction stays open.
SELECT pg_export_snapshot()
