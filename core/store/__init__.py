"""Persistence: the SQLite store, its versioned migrations, the pipeline state kept between runs.
"""
