-- Partitions of the event tables for this month and the $2 next ones, and for every month
-- whose events wait in a default partition (moved into their own). Migration 0020.
SELECT table_name, partition_name, rows_moved FROM ensure_event_partitions($1, $2)
