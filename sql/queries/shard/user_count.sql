-- The users a run shards (the default number of shards follows it).
SELECT count(*) FROM users
