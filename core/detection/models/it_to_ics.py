"""Anomalous IT to ICS Connection: an IT device opening sessions to OT devices or ICS ports."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.ics import ICS_PORTS
from plantwatch.core.detection.models.base import (
    Context,
    Model,
    dur,
    evidence,
    fmt_list,
    groups,
    hours_text,
    summarize,
    window_s_of,
)
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance, rate

MODEL = Model(
    "ics.it_to_ics", "Anomalous IT to ICS Connection", "ICS", "high", "lateral movement", ("T0886", "T0866"), True,
    "An IT device opens a session to an OT device or an ICS port on an edge never seen, or speaks "
    "an ICS port although it never did while learning.")


def run(ctx: Context) -> list[Breach]:
    if ctx.cold:
        return []
    c = ctx.mcfg(MODEL)
    w = float(c["window_s"])
    ics_port = pl.col("port").is_in(list(ICS_PORTS))
    f = ctx.S.filter(pl.col("c_it") & ~pl.col("s_ext") & ~pl.col("s_group") & (pl.col("s_ics") | ics_port)
                     & ((pl.col("edge_b") == 0) | (ics_port & (pl.col("c_ics_b") == 0))))
    out = []
    for g in groups(f, ["c"], w, key=["s", "port"]):
        dev, a, b, targets, ports = summarize(g)
        lam = rate(0, ctx.hours_b, window_s_of(g, w))
        imp = poisson_importance(g.height, lam)
        n_it_ot = int(g["net_it_ot_b"][0])
        expl = (f"{dev} (IT) opened {g.height} new connection(s) to {len(targets)} OT/ICS address(es) "
                f"({fmt_list(targets, 3)}) on port(s) {fmt_list(ports, 6)} within {dur(a, b)}; in "
                f"{hours_text(ctx.hours_b)} of learning it never did, and IT devices made "
                f"{n_it_ot} such connection(s) in all.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"connections": g.height, "targets": len(targets), "ports": ports,
                               "baseline_it_to_ot": n_it_ot},
                              immature=bool(g["c_immature"][0])))
    return out
