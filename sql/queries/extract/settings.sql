SELECT key, CAST(value AS TEXT) AS value FROM settings
