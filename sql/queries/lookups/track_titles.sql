SELECT t.id, r.artist, t.title FROM tracks t JOIN records r ON r.id = t.record_id WHERE t.id = ANY($1)
