"""Counting a source's distinct failed (host, port) targets over several horizons (minutes, an
hour, a day), so that a scan spread over hours is seen as well as a burst. A horizon fires when
the distinct targets within it reach its minimum and exceed `factor` times what the source's own
learned failure rate predicts for that long; a longer horizon only reports what no shorter one
already did (one breach per scan)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from plantwatch.core.detection.models.base import groups, span


@dataclass(frozen=True)
class Horizon:
    name: str          # "5 min", "1 h", "24 h": quoted by explanations
    seconds: float
    min_targets: int


def horizons(c: dict[str, Any]) -> list[Horizon]:
    """The model's horizons from its config: window_s/min_failures, hour_s/hour_min_failures,
    day_s/day_min_failures."""
    out = []
    for w, n in (("window_s", "min_failures"), ("hour_s", "hour_min_failures"), ("day_s", "day_min_failures")):
        s = float(c[w])
        out.append(Horizon(horizon_name(s), s, int(c[n])))
    return out


def horizon_name(s: float) -> str:
    """"5 min", "1 h", "24 h"."""
    return f"{s / 3600:g} h" if s >= 3600 else f"{s / 60:g} min"


def horizon_groups(f: pl.DataFrame, c: dict[str, Any], failed_b: str, hours_b: float
                   ) -> list[tuple[Horizon, pl.DataFrame, float]]:
    """(horizon, group, expected failures of the source in that horizon) for each burst of one
    source's failures (`f`, sessions with c, s, port) that crosses a horizon."""
    factor = float(c["learned_factor"])
    out: list[tuple[Horizon, pl.DataFrame, float]] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    for h in horizons(c):
        for g in groups(f, ["c"], h.seconds, key=["s", "port"], min_count=h.min_targets, window_s=h.seconds):
            a, b = span(g)
            dev = g["c"][0]
            if any(a <= z and b >= x for x, z in taken.get(dev, [])):
                continue
            expected = (int(g[failed_b][0]) / hours_b * h.seconds / 3600) if hours_b > 0 else 0.0
            if g.height < max(h.min_targets, math.ceil(factor * expected)):
                continue
            taken.setdefault(dev, []).append((a, b))
            out.append((h, g, expected))
    return out


def horizon_text(h: Horizon) -> str:
    return f"counted over the {h.name} horizon"
