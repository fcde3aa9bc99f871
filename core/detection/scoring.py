"""Scores: statistical importance against the baseline, breach score 0..1, device threat over time.

Importance is surprise, -log10 of the probability of what was seen under the baseline:
- counts (connections, failures, new keys) use the Poisson tail P(X >= x | lambda), with
  lambda = (count in the baseline + 1) / (baseline hours + prior hours) * window hours, so a key
  never seen gets a small smoothed rate rather than zero, and a short baseline judges less sharply;
- volumes use the normal tail of log1p(bytes per hour) against the pair's learned mean and spread.
A breach score is `weight(severity) * (1 - exp(-importance / scale))`, damped for devices whose
baseline is still learning. A device's threat score in an hour combines the breaches it did (and,
with a smaller share, those aimed at it) as 1 - prod(1 - s), fading with a half-life.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

HOUR_NS = 3_600_000_000_000
MAX_IMPORTANCE = 50.0


def poisson_importance(x: float, lam: float) -> float:
    """-log10 P(X >= x) for X ~ Poisson(lam); 0 when x <= 0."""
    if x <= 0:
        return 0.0
    lam = max(lam, 1e-12)
    k = int(math.ceil(x))
    if k <= lam:  # not above the expected count: P(X >= k) = 1 - P(X < k)
        cdf = sum(math.exp(i * math.log(lam) - lam - math.lgamma(i + 1)) for i in range(k))
        return min(MAX_IMPORTANCE, max(0.0, -math.log10(max(1e-300, 1.0 - cdf))))
    # tail sum in log space, from k up (terms shrink fast once past lam)
    terms = [i * math.log(lam) - lam - math.lgamma(i + 1) for i in range(k, k + 60)]
    m = max(terms)
    logp = m + math.log(sum(math.exp(t - m) for t in terms))
    return min(MAX_IMPORTANCE, max(0.0, -logp / math.log(10)))


def rate(count_b: float, hours_b: float, window_s: float, prior_hours: float = 24.0) -> float:
    """Expected count in a window from a baseline count over hours_b (smoothed)."""
    return (count_b + 1.0) / (hours_b + prior_hours) * (window_s / 3600.0)


def normal_importance(x: float, mean: float, sd: float) -> float:
    """-log10 of the upper normal tail of x."""
    z = (x - mean) / max(sd, 1e-9)
    if z <= 0:
        return 0.0
    p = 0.5 * math.erfc(z / math.sqrt(2))
    if p <= 0:
        # log of the tail for large z: log(phi(z)/z)
        logp = -z * z / 2 - math.log(z * math.sqrt(2 * math.pi))
        return min(MAX_IMPORTANCE, -logp / math.log(10))
    return min(MAX_IMPORTANCE, -math.log10(p))


def breach_score(importance: float, severity: str, weights: dict[str, float], scale: float,
                 factor: float = 1.0) -> float:
    w = weights.get(severity, 0.7)
    s = w * (1.0 - math.exp(-max(0.0, importance) / max(scale, 1e-9))) * factor
    return round(min(1.0, max(0.0, s)), 4)


def combine(scores: Iterable[float]) -> float:
    """Probabilistic OR of scores in 0..1."""
    p = 1.0
    for s in scores:
        p *= 1.0 - max(0.0, min(1.0, s))
    return 1.0 - p


def threat_over_time(events: list[tuple[str, int, int, float, bool]],
                     half_life_h: float) -> dict[str, dict[int, tuple[float, int]]]:
    """Per device, per hour (start ns): (threat score, breaches active).

    `events` are (device, first_ts, last_ts, score share, primary). A breach counts fully in the
    hours it spans and fades with the half-life after it. A device's own breaches (primary)
    combine as 1 - prod(1 - s); of the breaches aimed at it only the strongest counts, so a
    target of many probes does not outrank the prober. The series covers each device's breach
    hours and two half-lives after.
    """
    by_dev: dict[str, list[tuple[int, int, float, bool]]] = {}
    for dev, a, b, s, primary in events:
        by_dev.setdefault(dev, []).append((a // HOUR_NS, b // HOUR_NS, s, primary))
    out: dict[str, dict[int, tuple[float, int]]] = {}
    tail = max(1, int(math.ceil(2 * half_life_h)))
    for dev, evs in by_dev.items():
        hours = sorted({h for a, b, _, _ in evs for h in range(a, min(b, a + 72) + tail + 1)})
        series: dict[int, tuple[float, int]] = {}
        for h in hours:
            own, aimed = [], 0.0
            active = 0
            for a, b, s, primary in evs:
                if h < a:
                    continue
                if h <= b:
                    v = s
                    active += 1
                else:
                    v = s * 0.5 ** ((h - b) / max(half_life_h, 1e-9))
                if primary:
                    own.append(v)
                else:
                    aimed = max(aimed, v)
            sc = combine(own + [aimed])
            if sc > 0.001:
                series[h * HOUR_NS] = (round(sc, 4), active)
        out[dev] = series
    return out
