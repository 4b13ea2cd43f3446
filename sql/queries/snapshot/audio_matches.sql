-- Snapshot: audio matches, whole (catalogue).
SELECT id, track_id, CAST(audio_platform AS TEXT) AS audio_platform, external_id, url,
       CAST(match_status AS TEXT) AS match_status,
       CAST(confidence_score AS DOUBLE PRECISION) AS confidence_score, created_at, updated_at
FROM audio_matches
