SELECT table_name, rows_deleted FROM cleanup_old_analytics_data($1, $2, $3)
