"""Detection: the baseline (pattern of life), the feature context the models read, the model runner,
the models (one small module each, keyed by a stable id), scoring and incidents.
"""
