"""Detection: the baseline (pattern of life), the declared features and the context the models read,
the model runner, the models (one small module each, keyed by a stable id), scoring and incidents,
and triage (triage/: states, acceptances, allow rules, maintenance windows, re-scoring).
It computes only: results go to a sink (contracts.DetectionSink) the pipeline provides.
"""
