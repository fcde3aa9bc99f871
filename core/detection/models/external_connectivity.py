"""Unusual External Connectivity: many connections to external endpoints rare for the network,
including failed ones on ICS ports."""

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
    span,
    window_s_of,
)
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance, rate

MODEL = Model(
    "net.external", "Unusual External Connectivity", "Network", "medium", "command and control", ("T0885", "T0884"),
    True,
    "Connections to several external endpoints that (almost) no internal device used, or failed "
    "connections to the internet on ICS ports.")


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    w, n_min = float(c["window_s"]), int(c["min_endpoints"])
    rare_max = int(ctx.cfg["baseline"]["rare_max_devices"])
    ics_fail = pl.col("failed") & pl.col("port").is_in(list(ICS_PORTS))
    rare = (pl.col("s_prev_b") <= rare_max) & (pl.col("edge_b") == 0) & ~pl.lit(ctx.cold)
    f = ctx.S.filter(pl.col("s_ext") & ~pl.col("c_ext") & (rare | ics_fail))
    out = []
    for g in groups(f, ["c"], w):
        endpoints = g["s"].unique(maintain_order=True).to_list()
        n_ics = int(g.filter(ics_fail)["s"].n_unique())
        if n_ics == 0 and len(endpoints) < n_min:
            continue
        if n_ics == 0 and max_endpoints_in_window(g, w) < n_min:
            continue
        dev = g["c"][0]
        a, b = span(g)
        n_fail = int(g["failed"].sum())
        ports = sorted(set(g["port"].to_list()))
        lam = rate(0, ctx.hours_b, window_s_of(g, w))
        imp = poisson_importance(len(endpoints) + 2 * n_ics, lam)
        base = ("there is no baseline yet" if ctx.cold else
                f"each was used by at most {rare_max} internal device(s) in {hours_text(ctx.hours_b)} "
                f"of learning")
        expl = (f"{dev} made {g.height} connection(s) to {len(endpoints)} rare external address(es) "
                f"({fmt_list(endpoints, 3)}; port(s) {fmt_list(ports, 6)}), {n_fail} failed"
                + (f", {n_ics} address(es) on ICS ports" if n_ics else "")
                + f", within {dur(a, b)}; {base}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, endpoints, a, b, imp, expl, sids, refs,
                              {"connections": g.height, "endpoints": len(endpoints), "failed": n_fail,
                               "ics_port_endpoints": n_ics, "ports": ports},
                              immature=bool(g["c_immature"][0])))
    return out


def max_endpoints_in_window(g: pl.DataFrame, w: float) -> int:
    from plantwatch.core.detection.models.base import max_in_window

    first = g.sort("first_ts").unique("s", keep="first", maintain_order=True)
    return max_in_window(first["first_ts"].to_numpy(), w)
