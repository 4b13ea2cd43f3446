-- Give <table>_next the live table's Row Level Security flags and policies, in the load's
-- transaction (sql/postgres/0017_tighter_grants_and_secured_next_tables.sql).
SELECT publish_secure($1)
