-- Build one index ($2, by its name on the live table) of a published table ($1) on its loaded
-- <table>_next; false for one only publish_build makes
-- (sql/postgres/0015_publish_defaults_and_index_builds.sql).
SELECT publish_build_index($1, $2)
