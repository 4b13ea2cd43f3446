-- Drop the <table>_old tables ($1: the table names) a swap left behind; returns how many
-- (sql/postgres/0012_publish_swap.sql).
SELECT publish_drop_old(VARIADIC $1::text[])
