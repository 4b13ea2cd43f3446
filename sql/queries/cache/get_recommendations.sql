-- The API's read function (sql/postgres/0008, 0011): the cache reader's fallback.
SELECT * FROM get_recommendations($1, $2, $3)
