"""Counting one source's distinct targets over several horizons (minutes, an hour, a day), so that
a scan, a sweep or a call-home spread over hours is seen as well as a burst. A horizon fires when
the distinct targets within it reach its minimum (and whatever else the model asks); a longer
horizon only reports what no shorter one already did (one breach per scan)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from plantwatch.core.detection.models.base import groups, span
from plantwatch.core.detection.peaks import LearnedPeaks, Need

# the config keys of the three horizons: (seconds, minimum distinct targets) per horizon
FAILURE_KEYS = (("window_s", "min_failures"), ("hour_s", "hour_min_failures"), ("day_s", "day_min_failures"))


@dataclass(frozen=True)
class Horizon:
    name: str          # "5 min", "1 h", "24 h": quoted by explanations
    seconds: float
    min_targets: int


def horizons(c: dict[str, Any], keys: tuple[tuple[str, str], ...] = FAILURE_KEYS) -> list[Horizon]:
    """The model's horizons from its config, shortest first: each (seconds key, minimum key) of
    `keys` (by default window_s/min_failures, hour_s/hour_min_failures, day_s/day_min_failures)."""
    out = []
    for w, n in keys:
        s = float(c[w])
        out.append(Horizon(horizon_name(s), s, int(c[n])))
    return sorted(out, key=lambda h: h.seconds)


def horizon_name(s: float) -> str:
    """"5 min", "1 h", "24 h"."""
    return f"{s / 3600:g} h" if s >= 3600 else f"{s / 60:g} min"


def distinct_over_horizons(f: pl.DataFrame, by: str, key: list[str], hs: list[Horizon],
                           accept: Callable[[Horizon, pl.DataFrame], bool] | None = None,
                           taken: dict[str, list[tuple[int, int]]] | None = None,
                           ) -> list[tuple[Horizon, pl.DataFrame]]:
    """(horizon, group) for each run of one `by` source's rows (first_ts, last_ts) that holds at
    least the horizon's minimum of distinct `key`s within the horizon, and that `accept` takes
    (a learned threshold, say). A group overlapping one a shorter horizon already reported is
    left out, as is one overlapping a span of `taken` (source -> spans already reported, updated).
    Each group holds one row per distinct key, sorted by time."""
    out: list[tuple[Horizon, pl.DataFrame]] = []
    taken = {} if taken is None else taken
    for h in hs:
        for g in groups(f, [by], h.seconds, key=key, min_count=h.min_targets, window_s=h.seconds):
            a, b = span(g)
            dev = g[by][0]
            if any(a <= z and b >= x for x, z in taken.get(dev, [])):
                continue
            if accept is not None and not accept(h, g):
                continue
            taken.setdefault(dev, []).append((a, b))
            out.append((h, g))
    return out


def learned_need(peaks: LearnedPeaks, measure: str, by: str
                 ) -> tuple[Callable[[Horizon, pl.DataFrame], bool], dict[tuple[str, float], Need]]:
    """An `accept` for distinct_over_horizons: the group reaches what the source needs over the
    horizon (its floor, or more when learning saw more: core/detection/peaks.py); and the needs
    it judged with, by (source, horizon seconds), for the explanations."""
    needs: dict[tuple[str, float], Need] = {}

    def accept(h: Horizon, g: pl.DataFrame) -> bool:
        src = g[by][0]
        n = needs.setdefault((src, h.seconds), peaks.need(measure, h.seconds, src, h.min_targets))
        return g.height >= n.targets

    return accept, needs


def horizon_groups(f: pl.DataFrame, c: dict[str, Any], failed_b: str, hours_b: float,
                   peaks: LearnedPeaks, measure: str) -> list[tuple[Horizon, pl.DataFrame, float, Need]]:
    """(horizon, group, expected failures of the source in that horizon, the distinct targets it
    needed) for each burst of one source's failures (`f`, sessions with c, s, port) that crosses
    a horizon, reaches what learning saw of the source and the network (`measure` of `peaks`),
    and exceeds `learned_factor` times what the source's own learned failure rate predicts."""
    factor = float(c["learned_factor"])
    learned, needs = learned_need(peaks, measure, "c")

    def expected(h: Horizon, g: pl.DataFrame) -> float:
        return (int(g[failed_b][0]) / hours_b * h.seconds / 3600) if hours_b > 0 else 0.0

    def accept(h: Horizon, g: pl.DataFrame) -> bool:
        return learned(h, g) and g.height >= max(h.min_targets, math.ceil(factor * expected(h, g)))

    return [(h, g, expected(h, g), needs[(g["c"][0], h.seconds)])
            for h, g in distinct_over_horizons(f, "c", ["s", "port"], horizons(c), accept)]


def horizon_text(h: Horizon, need: Need | None = None) -> str:
    """"counted over the 1 h horizon", with the learned threshold when it is above the floor."""
    extra = need.text() if need is not None else ""
    return f"counted over the {h.name} horizon" + (f", {extra}" if extra else "")
