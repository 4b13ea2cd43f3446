SELECT id, artist, title, label, release_year, country, genres, styles
FROM records
