-- Columns of one table ($1) backed by a sequence (identity or serial), with that sequence:
-- flows/storage/bulk.py moves each sequence past the largest id it loaded.
SELECT a.attname                                              AS column_name,
       pg_get_serial_sequence(quote_ident($1), a.attname)     AS sequence_name
  FROM pg_attribute AS a
 WHERE a.attrelid = $1::regclass
   AND a.attnum > 0
   AND NOT a.attisdropped
   AND pg_get_serial_sequence(quote_ident($1), a.attname) IS NOT NULL
 ORDER BY a.attnum
