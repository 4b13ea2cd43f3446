"""Storage: database URLs and secrets, migrations, and the two backends (PostgreSQL, DuckDB)
behind one interface (flows/storage/backends.py), with bulk COPY, publish and swap. Only
flows/ knows which backend is in use."""
