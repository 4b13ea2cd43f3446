-- Snapshot: tracks, whole (catalogue).
SELECT id, record_id, position, track_index, title, duration_seconds,
       CAST(artists AS TEXT) AS artists, CAST(credits AS TEXT) AS credits, tags,
       created_at, updated_at
FROM tracks
