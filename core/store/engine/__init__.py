"""Database engines behind Store: SQLite (the embedded default) and PostgreSQL (dialect.py,
postgres.py, pg_store.py). psycopg is imported only when a PostgreSQL store is opened."""
