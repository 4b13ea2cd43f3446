-- Snapshot: store inventory, whole (catalogue).
SELECT id, store_id, record_id, discogs_listing_id, CAST(price AS DOUBLE PRECISION) AS price,
       currency, CAST(record_condition AS TEXT) AS record_condition,
       CAST(sleeve_condition AS TEXT) AS sleeve_condition,
       CAST(record_status AS TEXT) AS record_status, listed_at, created_at, updated_at
FROM store_inventory
