SELECT id, record_id, position, track_index, title, duration_seconds
FROM tracks
