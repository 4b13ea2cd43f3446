-- Snapshot: stores, whole (catalogue).
SELECT id, name, slug, discogs_username, CAST(store_status AS TEXT) AS store_status, city,
       country, created_at, updated_at
FROM stores
