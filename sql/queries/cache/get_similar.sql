-- The API's read function (sql/postgres/0008): the cache reader's fallback.
SELECT * FROM get_similar($1, $2, $3, $4)
