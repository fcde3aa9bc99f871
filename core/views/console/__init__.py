"""The console's read API over the store, split by subject (see core/views/queries.py)."""
