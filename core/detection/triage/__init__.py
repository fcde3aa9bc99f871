"""Triage: what an analyst decides about breaches, and how those decisions re-score them.

States (new, acknowledged, resolved, false positive), acceptances (the keys of a breach taken
as normal), allow rules (a TOML file with wildcards) and maintenance windows. `rescore` is a pure
function of the detected breaches and these inputs: withdrawing every input gives back exactly
the detected breaches and incidents. Matching uses packet time; the times of the decisions
themselves are wall-clock (they are human actions, not decisions on packets).
"""
