SELECT id, artist, title FROM records WHERE id = ANY($1)
