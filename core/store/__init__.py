"""Persistence: the SQLite store, its versioned migrations, the pipeline state kept between runs, and
the writers that keep detection's results (breaches, incidents, scores, the baseline), and the
analyst's triage decisions with their application to the stored breaches (triage.py, triage_apply.py).
"""
