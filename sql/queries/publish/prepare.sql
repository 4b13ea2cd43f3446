-- An empty, unindexed copy of a published table ($1), named <table>_next, for the publish
-- transaction to COPY into; returns that name (sql/postgres/0012_publish_swap.sql).
SELECT publish_prepare($1)
