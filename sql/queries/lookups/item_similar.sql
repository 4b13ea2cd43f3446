-- An item's unexpired neighbours ($1 source type, $2 id, $3 similarity type or NULL, $4 limit).
SELECT similarity_type, target_type, target_id, score, rank
FROM content_similarity
WHERE source_type = $1 AND source_id = $2
  AND (CAST($3 AS TEXT) IS NULL OR similarity_type = CAST($3 AS TEXT))
  AND rank <= $4
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY similarity_type, rank
