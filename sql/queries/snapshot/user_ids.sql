-- Snapshot: every user id (the sample is drawn from them).
SELECT id FROM users
