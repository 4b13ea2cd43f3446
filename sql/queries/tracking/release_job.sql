-- The run is over: its hold on its job ($1) ends (tracking/claim_job).
SELECT pg_advisory_unlock(hashtext('rotation.jobs'), ($1 % 2147483647)::int)
