-- A user's records and their genres, as get_recommendations (sql/postgres/0011) reads them
-- for its popularity fallback: favourites, collections and the 500 most recent plays; the
-- genres sorted by the database's collation. The cache reader applies the fallback's rules
-- to the run's cached popularity list with these.
WITH history AS (
    SELECT f.favoritable_id AS record_id
      FROM favorites AS f
     WHERE f.user_id = $1 AND f.favoritable_type = 'record'
    UNION ALL
    SELECT t.record_id
      FROM favorites AS f
      JOIN tracks AS t ON t.id = f.favoritable_id
     WHERE f.user_id = $1 AND f.favoritable_type = 'track'
    UNION ALL
    SELECT i.record_id
      FROM user_collections AS c
      JOIN user_collection_items AS i ON i.collection_id = c.id
     WHERE c.user_id = $1
    UNION ALL
    SELECT t.record_id
      FROM (SELECT p.track_id
              FROM play_history AS p
             WHERE p.user_id = $1 AND p.action IN ('play', 'complete')
             ORDER BY p.played_at DESC
             LIMIT 500) AS recent
      JOIN tracks AS t ON t.id = recent.track_id
),
records_had AS (
    SELECT coalesce(array_agg(DISTINCT h.record_id), '{}') AS ids FROM history AS h
)
SELECT h.ids AS record_ids,
       (SELECT coalesce(array_agg(DISTINCT g.genre ORDER BY g.genre), '{}')
          FROM records AS r
         CROSS JOIN LATERAL unnest(r.genres) AS g (genre)
         WHERE r.id = ANY (h.ids) AND g.genre IS NOT NULL) AS genres
  FROM records_had AS h
