-- Foreign keys between tables of the public schema: (child table, parent table), for
-- flows/storage/bulk.py to write parents first and delete children first.
SELECT c.conrelid::regclass::text  AS child,
       c.confrelid::regclass::text AS parent
  FROM pg_constraint AS c
 WHERE c.contype = 'f'
   AND c.conrelid <> c.confrelid
 ORDER BY 1, 2
