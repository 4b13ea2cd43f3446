-- The partition of the month starting at $2 (UTC) of event table $1, unless one covers it;
-- the rows of that month waiting in the default partition move in. Migration 0020.
SELECT create_event_partition($1, $2)
