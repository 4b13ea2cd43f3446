-- DuckDB's tracking/publish_committed: in the publish's own transaction, the job's ($1)
-- results are live once this commits.
UPDATE jobs SET result = json_merge_patch(coalesce(result, '{}'), '{"published": true}') WHERE id = $1
