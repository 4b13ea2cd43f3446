-- Snapshot: settings, whole.
SELECT key, CAST(value AS TEXT) AS value, CAST(setting_type AS TEXT) AS setting_type,
       description, updated_at
FROM settings
