-- Copies the next month of <table>_legacy aside while readers and writers go on; its rows,
-- or NULL once every month is copied.
SELECT split_event_legacy_copy($1)
