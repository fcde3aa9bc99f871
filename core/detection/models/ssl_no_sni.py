"""Anomalous SSL without SNI to New External: TLS ClientHellos without a server name to external
addresses the network never used."""

from __future__ import annotations

import polars as pl

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
    "tls.no_sni", "Anomalous SSL without SNI to New External", "Network", "high", "command and control",
    ("T0869", "T0885"), True,
    "TLS without SNI to an external endpoint new to the whole network (typical of tooling and C2).")


def run(ctx: Context) -> list[Breach]:
    if ctx.cold:
        return []
    w = float(ctx.mcfg(MODEL)["window_s"])
    f = ctx.S.filter(pl.col("tls_no_sni") & pl.col("s_ext") & (pl.col("s_srv_b") == 0)
                     & ~pl.col("ja3_known"))
    out = []
    for g in groups(f, ["c"], w):
        dev, a, b, targets, ports = summarize(g)
        lam = rate(0, ctx.hours_b, window_s_of(g, w))
        imp = poisson_importance(g.height, lam)
        nosni_b = int(g["net_nosni_b"][0])
        expl = (f"{dev} made {g.height} TLS connection(s) without SNI to {len(targets)} external "
                f"address(es) never used by the network ({fmt_list(targets, 3)}; port(s) "
                f"{fmt_list(ports)}) within {dur(a, b)}; in {hours_text(ctx.hours_b)} of learning "
                f"{nosni_b} TLS session(s) to external addresses had no SNI.")
        sids, refs = evidence(g, "ev_tls")
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"sessions": g.height, "endpoints": targets, "ports": ports},
                              immature=bool(g["c_immature"][0])))
    return out
