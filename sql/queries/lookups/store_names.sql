SELECT id, name FROM stores WHERE id = ANY($1)
