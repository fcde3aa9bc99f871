"""ARP Sweep: one address asking ARP for many addresses of its segment in a short time, the
layer-2 way of finding live hosts (it needs no reply and no session). Routers are left out: they
ARP for whatever they forward to, a scanner's targets included."""

from __future__ import annotations

import polars as pl

from plantwatch.core.detection.models.base import Context, Model, dur, fmt_list, groups, span
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance

MODEL = Model(
    "net.arp_sweep", "ARP Sweep", "Network", "medium", "discovery", ("T0846", "T0840"), False,
    "One device asking ARP for many addresses in a short time: a sweep for live hosts.")


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    w, n_min = float(c["window_s"]), int(c["min_targets"])
    f = ctx.A.filter(~pl.col("sender_router")).rename({"ts": "first_ts"}).with_columns(
        pl.col("first_ts").alias("last_ts"))
    out = []
    for g in groups(f, ["sender"], w, key=["target"], min_count=n_min, window_s=w):
        dev = g["sender"][0]
        a, b = span(g)
        targets = g["target"].to_list()
        imp = poisson_importance(g.height, 1.0)
        expl = (f"{dev} asked ARP for {g.height} different addresses ({fmt_list(targets, 3)}) within "
                f"{dur(a, b)}; a host asks for its gateway and the few peers it talks to, a sweep asks "
                f"for the whole segment.")
        refs = [int(r) for r in g["ref"].to_list()]
        out.append(ctx.breach(MODEL, dev, [], a, b, imp, expl, [], refs,
                              {"targets": g.height, "first": targets[0], "last": targets[-1]}))
    return out
