"""Multiple Failed Internal Connections: one source failing against many internal (host, port)s."""

from __future__ import annotations

import polars as pl

from plantwatch.core.detection.models.base import (
    Context,
    Model,
    dur,
    evidence,
    fmt_list,
    hours_text,
    summarize,
    window_s_of,
)
from plantwatch.core.detection.models.horizons import horizon_groups, horizon_text
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance, rate

MODEL = Model(
    "net.failed_internal", "Multiple Failed Internal Connections", "Network", "medium", "discovery", ("T0846",), False,
    "Many refused, unanswered or unreachable connections from one source to internal hosts in a "
    "short time: a scan or a sweep.")


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    f = ctx.S.filter(pl.col("failed") & ~pl.col("s_ext") & ~pl.col("s_group"))
    out = []
    for h, g, _, need in horizon_groups(f, c, "c_failed_b", ctx.hours_b, ctx.peaks, "failed_internal"):
        w = h.seconds
        dev, a, b, targets, ports = summarize(g)
        fb = int(g["c_failed_b"][0])
        lam = rate(fb, ctx.hours_b, window_s_of(g, w))
        imp = poisson_importance(g.height, lam)
        if ctx.cold:
            base = "there is no baseline yet, and no normal device fails like this"
        else:
            base = (f"in {hours_text(ctx.hours_b)} of learning it had {fb} failed connection(s) "
                    f"(expected {lam:.2g} in this time)")
        expl = (f"{dev} failed {g.height} connections to {len(targets)} internal host(s) on port(s) "
                f"{fmt_list(ports, 6)} within {dur(a, b)} ({horizon_text(h, need)}); {base}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"failures": g.height, "horizon": h.name, "horizon_s": h.seconds, "targets": len(targets), "ports": ports,
                               "baseline_failures": fb, "expected": lam, **need.details()}))
    return out
