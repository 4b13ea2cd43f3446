SELECT id, name, slug, CAST(store_status AS TEXT) AS store_status, city, country
FROM stores
