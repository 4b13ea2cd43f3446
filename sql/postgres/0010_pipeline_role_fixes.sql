-- The nightly run as rotation_pipeline (0009) stopped at its first read: extract_settings
-- reads `settings` (key, value) for `platform.start_date`, the lower bound of valid events,
-- and 0009 gave the role nothing on `settings`. Grant the two columns the pipeline reads,
-- and only the rows it needs: other settings (descriptions, anything added later) stay
-- invisible to it. Forward-only: 0009 is left as it was.

GRANT SELECT (key, value) ON settings TO rotation_pipeline;

CREATE POLICY settings_pipeline_read ON settings FOR SELECT TO rotation_pipeline
    USING (key = 'platform.start_date');
