-- Export: the published neighbours, in lookup order.
SELECT source_type, source_id, target_type, target_id, similarity_type, score, rank,
       model_version, run_id, computed_at, expires_at
FROM content_similarity
ORDER BY source_type, source_id, similarity_type, rank
