"""Uncommon ICS Reprogram: any REPROGRAM operation (download, upload, delete block, file
transfer) from a source that did so to that target at most `max_seen` times while learning."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.schema import CLS_REPROGRAM
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
    "ics.reprogram", "Uncommon ICS Reprogram", "ICS", "critical", "impact", ("T0843", "T0845", "T0809"), False,
    "A program download, upload or block deletion on a pair that (almost) never did it.",
    prior_hours=24.0 * 30)


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    w, max_seen = float(c["window_s"]), int(c["max_seen"])
    f = ctx.ops.filter((pl.col("cls") == CLS_REPROGRAM) & (pl.col("pair_reprogram_b") <= max_seen))
    out = []
    for g in groups(f, ["src", "dst"], w):
        dev, dst = g["src"][0], g["dst"][0]
        a, b = span(g)
        names = g["name"].unique(maintain_order=True).to_list()
        seen = int(g["pair_reprogram_b"].max())
        n_ops = int(g["count"].sum())
        lam = rate(seen, ctx.hours_b, window_s_of(g, w), MODEL.prior_hours)
        imp = poisson_importance(n_ops, lam)
        base = ("there is no baseline yet" if ctx.cold else
                f"the pair did {seen} REPROGRAM operation(s) in {hours_text(ctx.hours_b)} of learning")
        expl = (f"{dev} sent {n_ops} REPROGRAM operation(s) ({fmt_list(names)}) to {dst} within "
                f"{dur(a, b)}; {base}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, [dst], a, b, imp, expl, sids, refs,
                              {"operations": names, "count": n_ops, "baseline_pair_reprogram": seen}))
    return out
