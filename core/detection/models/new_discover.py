"""Multiple New Discover Commands: several DISCOVER operations new for their source and target."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.schema import CLS_DISCOVER
from plantwatch.core.detection.models.base import (
    Context,
    Model,
    dur,
    evidence,
    fmt_list,
    groups,
    hours_text,
    span,
    window_s_of,
)
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance, rate

MODEL = Model(
    "ics.new_discover", "Multiple New Discover Commands", "ICS", "high", "discovery", ("T0888", "T0846"), True,
    "Several DISCOVER operations (identification, SZL reads, block lists) that the source never "
    "sent to those targets while learning.")


def run(ctx: Context) -> list[Breach]:
    if ctx.cold:
        return []
    c = ctx.mcfg(MODEL)
    w, k_min, t_min = float(c["window_s"]), int(c["min_keys"]), int(c["min_targets"])
    f = ctx.ops.filter((pl.col("cls") == CLS_DISCOVER) & (pl.col("key_b") == 0))
    out = []
    for g in groups(f, ["src"], w, key=["dst", "app", "code", "name"]):
        targets = g["dst"].unique(maintain_order=True).to_list()
        if g.height < k_min and len(targets) < t_min:
            continue
        dev = g["src"][0]
        a, b = span(g)
        names = g["name"].unique(maintain_order=True).to_list()
        lam = rate(0, ctx.hours_b, window_s_of(g, w))
        imp = poisson_importance(g.height, lam)
        nb = int(g["src_discover_b"][0])
        expl = (f"{dev} sent {g.height} DISCOVER operation(s) new for their target ({fmt_list(names)}) "
                f"to {len(targets)} device(s) ({fmt_list(targets, 3)}) within {dur(a, b)}; in "
                f"{hours_text(ctx.hours_b)} of learning it sent {nb} DISCOVER operation(s) in all.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"new_keys": g.height, "operations": names, "targets": len(targets),
                               "baseline_discover": nb},
                              immature=bool(g["src_immature"][0])))
    return out
