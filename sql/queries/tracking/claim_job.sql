-- The living run's hold on its job ($1): a session lock on the bookkeeping connection, taken
-- again whenever that connection is opened again. tracking/fail_dead_jobs reads it.
SELECT pg_advisory_lock(hashtext('rotation.jobs'), ($1 % 2147483647)::int)
