-- DuckDB's play_history retention (cleanup_old_analytics_data's p_play_retention_days): plays
-- older than the cutoff ($1), one returned row per deleted row. Run only when it is set.
DELETE FROM play_history WHERE played_at < CAST($1 AS TIMESTAMPTZ) RETURNING 'play_history'
