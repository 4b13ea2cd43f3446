SELECT id, store_id, record_id, CAST(price AS DOUBLE PRECISION) AS price,
       CAST(record_status AS TEXT) AS record_status, listed_at
FROM store_inventory
