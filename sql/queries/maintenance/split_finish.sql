-- Swaps the copied months in as partitions and drops <table>_legacy, under a short lock.
SELECT partition_name, rows_moved FROM split_event_legacy_finish($1)
