-- The columns of one table ($1: a table name) with their Postgres types, for flows/storage/bulk.py:
-- it casts each frame column to the Arrow type whose binary COPY form the server accepts.
SELECT a.attname                              AS column_name,
       format_type(a.atttypid, a.atttypmod)   AS column_type,
       t.typtype                              AS type_kind,
       a.atttypmod                            AS type_modifier
  FROM pg_attribute AS a
  JOIN pg_type AS t ON t.oid = a.atttypid
 WHERE a.attrelid = $1::regclass
   AND a.attnum > 0
   AND NOT a.attisdropped
 ORDER BY a.attnum
