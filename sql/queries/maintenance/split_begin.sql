-- Starts logging the writes to <table>_legacy ($1); false when it has no legacy partition.
SELECT split_event_legacy_begin($1)
