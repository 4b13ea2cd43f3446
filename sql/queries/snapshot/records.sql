-- Snapshot: records, whole (catalogue).
SELECT id, discogs_release_id, artist, artist_sort, title, label, catalog_number, release_year,
       country, genres, styles, CAST(images AS TEXT) AS images, CAST(videos AS TEXT) AS videos,
       created_at, updated_at
FROM records
