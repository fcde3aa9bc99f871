"""Persistence: the SQLite store, its versioned migrations, the pipeline state kept between runs, and
the writers that keep detection's results (breaches, incidents, scores, the baseline).
"""
