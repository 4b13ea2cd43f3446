-- The indexes, keys and statistics of a published table ($1), built on its loaded
-- <table>_next (sql/postgres/0012_publish_swap.sql).
SELECT publish_build($1)
