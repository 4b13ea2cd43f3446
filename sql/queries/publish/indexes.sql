-- The names of a published table's indexes ($1), each of which publish_build_index builds on
-- its <table>_next, largest first (the longest build starts first).
SELECT ic.relname
  FROM pg_catalog.pg_index AS i
  JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid
 WHERE i.indrelid = pg_catalog.to_regclass(pg_catalog.format('public.%I', $1::text))
 ORDER BY pg_catalog.pg_relation_size(i.indexrelid) DESC, ic.relname
