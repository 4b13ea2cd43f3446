-- Enabled user triggers fired by INSERT or DELETE on one table ($1): flows/storage/bulk.py disables
-- them while it writes frames verbatim (the frames already hold the derived values).
-- tgtype bits: 4 = INSERT, 8 = DELETE.
SELECT t.tgname AS trigger_name
  FROM pg_trigger AS t
 WHERE t.tgrelid = $1::regclass
   AND NOT t.tgisinternal
   AND t.tgenabled <> 'D'
   AND (t.tgtype & 12) <> 0
 ORDER BY t.tgname
