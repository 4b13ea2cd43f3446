-- The last user id of each of $1 shards of the users in id order (ntile: sizes differ by
-- at most one user).
SELECT max(id) AS last_id
FROM (SELECT id, ntile($1) OVER (ORDER BY id) AS shard FROM users) AS numbered
GROUP BY shard
ORDER BY shard
