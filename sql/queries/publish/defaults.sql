-- Column defaults of a published table's <table>_next ($1) for its COPY, from a JSON object
-- of {column: value as text} ($2); the other columns get the table's own defaults back
-- (sql/postgres/0015_publish_defaults_and_index_builds.sql).
SELECT publish_defaults($1, $2::jsonb)
