"""Unusual External Connectivity: connections to several external endpoints rare for the network,
counted over several horizons (core/detection/models/horizons.py: a burst in minutes, a call-home
to new endpoints spread over an hour or a night), and failed connections to the internet on ICS
ports (any number, within `window_s`)."""

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
from plantwatch.core.detection.models.horizons import (
    Horizon,
    distinct_over_horizons,
    horizon_name,
    horizon_text,
    horizons,
    learned_need,
)
from plantwatch.core.detection.peaks import Need
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance, rate

MODEL = Model(
    "net.external", "Unusual External Connectivity", "Network", "medium", "command and control", ("T0885", "T0884"),
    True,
    "Connections to several external endpoints that (almost) no internal device used, in minutes or "
    "spread over hours, or failed connections to the internet on ICS ports.")

KEYS = (("window_s", "min_endpoints"), ("hour_s", "hour_min_endpoints"), ("day_s", "day_min_endpoints"))


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    w = float(c["window_s"])
    rare_max = int(ctx.cfg["baseline"]["rare_max_devices"])
    ics_fail = pl.col("failed") & pl.col("port").is_in(list(ICS_PORTS))
    rare = (pl.col("s_prev_b") <= rare_max) & (pl.col("edge_b") == 0) & ~pl.lit(ctx.cold)
    f = ctx.S.filter(pl.col("s_ext") & ~pl.col("c_ext") & (rare | ics_fail))
    found: list[tuple[Horizon, pl.DataFrame, Need | None]] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    # failed connections to the internet on ICS ports: any number is unusual
    for g in groups(f, ["c"], w):
        if g.filter(ics_fail).height:
            found.append((Horizon(horizon_name(w), w, 1), g, None))
            taken.setdefault(g["c"][0], []).append(span(g))
    accept, needs = learned_need(ctx.peaks, "external", "c")
    for h, g in distinct_over_horizons(f.filter(rare), "c", ["s"], horizons(c, KEYS), accept, taken=taken):
        a, b = span(g)
        # every connection of the source to those endpoints in that span, not one per endpoint
        found.append((h, f.filter((pl.col("c") == g["c"][0]) & pl.col("s").is_in(g["s"].implode())
                                  & pl.col("first_ts").is_between(a, b)).sort("first_ts"),
                      needs[(g["c"][0], h.seconds)]))
    out = []
    for h, g, need in found:
        endpoints = g["s"].unique(maintain_order=True).to_list()
        n_ics = int(g.filter(ics_fail)["s"].n_unique())
        dev = g["c"][0]
        a, b = span(g)
        n_fail = int(g["failed"].sum())
        ports = sorted(set(g["port"].to_list()))
        lam = rate(0, ctx.hours_b, window_s_of(g, h.seconds))
        imp = poisson_importance(len(endpoints) + 2 * n_ics, lam)
        base = ("there is no baseline yet" if ctx.cold else
                f"each was used by at most {rare_max} internal device(s) in {hours_text(ctx.hours_b)} "
                f"of learning")
        expl = (f"{dev} made {g.height} connection(s) to {len(endpoints)} rare external address(es) "
                f"({fmt_list(endpoints, 3)}; port(s) {fmt_list(ports, 6)}), {n_fail} failed"
                + (f", {n_ics} address(es) on ICS ports" if n_ics else "")
                + f", within {dur(a, b)} ({horizon_text(h, need)}); {base}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, endpoints, a, b, imp, expl, sids, refs,
                              {"connections": g.height, "endpoints": len(endpoints), "failed": n_fail,
                               "ics_port_endpoints": n_ics, "ports": ports, "horizon": h.name,
                               "horizon_s": h.seconds, **(need.details() if need else {})},
                              immature=bool(g["c_immature"][0])))
    return out
