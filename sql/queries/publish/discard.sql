-- Drop the <table>_next tables ($1: the table names) of a publish that failed before its swap
-- committed; returns how many (sql/postgres/0013_publish_discard.sql).
SELECT publish_discard(VARIADIC $1::text[])
