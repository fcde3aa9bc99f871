"""Unusual ICS Connectivity: new edges to or from OT/ICS devices, ICS ports to the internet."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.ics import ICS_APPS, ICS_PORTS
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
    "ics.connectivity", "Unusual ICS Connectivity", "ICS", "medium", "lateral movement", ("T0886", "T0884"), True,
    "A connection on an edge never seen that involves an OT/ICS device, an ICS device reaching IT "
    "or the internet, or an ICS port used towards the internet.")


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    w = float(c["window_s"])
    ics_port = pl.col("port").is_in(list(ICS_PORTS))
    to_internet = ics_port & (pl.col("s_ext") | pl.col("c_ext"))  # needs no history
    # a client that already speaks this ICS protocol reaching another controller that already
    # served clients: an engineering station or SCADA server visiting a sibling, not a new path
    sibling = (pl.col("c_app_b") > 0) & (pl.col("s_srv_b") > 0) & pl.col("app").is_in(list(ICS_APPS)) & ~pl.col("failed")
    new_edge = (pl.col("edge_b") == 0) & (pl.col("c_ics") | pl.col("s_ics") | ics_port) & ~sibling & ~pl.lit(ctx.cold)
    f = ctx.S.filter(~pl.col("s_group") & (to_internet | new_edge)).with_columns(to_internet.alias("inet"))
    out = []
    for g in groups(f, ["c", "inet"], w, key=["s", "port"]):
        dev, a, b, targets, ports = summarize(g)
        n_ext = int(g.filter(pl.col("s_ext") & pl.col("port").is_in(list(ICS_PORTS)))["s"].n_unique())
        lam = rate(0, ctx.hours_b, window_s_of(g, w))
        imp = poisson_importance(g.height, lam)
        what = f"{g.height} connection(s) on {g.select('s', 'port').unique().height} edge(s) never seen"
        if n_ext:
            what += f", {n_ext} of them to internet addresses on ICS ports"
        base = ("there is no baseline yet" if ctx.cold else
                f"none of these edges appeared in {hours_text(ctx.hours_b)} of learning")
        expl = (f"{dev} made {what} ({fmt_list(targets, 3)}; port(s) {fmt_list(ports, 6)}) within "
                f"{dur(a, b)}; {base}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"connections": g.height, "targets": len(targets), "ports": ports,
                               "internet_ics": n_ext},
                              immature=bool(g["c_immature"][0])))
    return out
