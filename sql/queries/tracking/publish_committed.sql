-- In the publish's own transaction: the job's ($1) results are live once this commits.
UPDATE jobs SET result = coalesce(result, '{}'::jsonb) || '{"published": true}'::jsonb WHERE id = $1
