-- The ids of a published table's <table>_next ($1) for a COPY of $2 rows: (column, first id,
-- step) for each identity column not among the columns sent ($3), its sequence moved past
-- them (sql/postgres/0016_publish_reserve_ids.sql).
SELECT column_name, first_id, step FROM publish_reserve_ids($1, $2, $3::text[])
