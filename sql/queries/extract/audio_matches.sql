SELECT id, track_id, CAST(audio_platform AS TEXT) AS audio_platform,
       CAST(match_status AS TEXT) AS match_status,
       CAST(confidence_score AS DOUBLE PRECISION) AS confidence_score
FROM audio_matches
