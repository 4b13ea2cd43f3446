-- Swap each built <table>_next in for its table ($1: the table names), under a short
-- ACCESS EXCLUSIVE lock held until the publish transaction commits
-- (sql/postgres/0012_publish_swap.sql).
SELECT publish_swap(VARIADIC $1::text[])
