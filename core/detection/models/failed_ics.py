"""Multiple Failed Connections to ICS Device: failures against ICS ports or OT devices."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.ics import ICS_PORTS
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
    "ics.failed_connections", "Multiple Failed Connections to ICS Device", "ICS", "high", "discovery", ("T0846", "T0888"), False,
    "Several refused or unanswered connections from one source to ICS ports or OT devices: "
    "a scan looking for controllers.")


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    f = ctx.S.filter(pl.col("failed") & ~pl.col("s_ext") & ~pl.col("s_group")
                     & (pl.col("s_ics") | pl.col("port").is_in(list(ICS_PORTS))))
    out = []
    for h, g, _, need in horizon_groups(f, c, "c_failed_ics_b", ctx.hours_b, ctx.peaks, "failed_ics"):
        w = h.seconds
        dev, a, b, targets, ports = summarize(g)
        fb = int(g["c_failed_ics_b"][0])
        lam = rate(fb, ctx.hours_b, window_s_of(g, w))
        imp = poisson_importance(g.height, lam)
        base = ("there is no baseline yet" if ctx.cold else
                f"in {hours_text(ctx.hours_b)} of learning it had {fb} failed ICS connection(s)")
        expl = (f"{dev} failed {g.height} connections to ICS port(s) {fmt_list(ports, 6)} of "
                f"{len(targets)} OT/ICS address(es) within {dur(a, b)} ({horizon_text(h, need)}); {base}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"failures": g.height, "horizon": h.name, "horizon_s": h.seconds, "targets": len(targets), "ports": ports,
                               "baseline_failures": fb, **need.details()}))
    return out
