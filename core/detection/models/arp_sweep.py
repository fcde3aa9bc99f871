"""ARP Sweep: one address asking ARP for many addresses of its segment, the layer-2 way of finding
live hosts (it needs no reply and no session). Counted over several horizons (core/detection/
models/horizons.py): a burst in minutes, and a slow sweep of a subnet spread over hours or a day.
Routers are left out: they ARP for whatever they forward to, a scanner's targets included."""

from __future__ import annotations

import polars as pl

from plantwatch.core.detection.models.base import Context, Model, dur, fmt_list, span
from plantwatch.core.detection.models.horizons import (
    distinct_over_horizons,
    horizon_text,
    horizons,
    learned_need,
)
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance

MODEL = Model(
    "net.arp_sweep", "ARP Sweep", "Network", "medium", "discovery", ("T0846", "T0840"), False,
    "One device asking ARP for many addresses of its segment, in minutes or spread over hours: a "
    "sweep for live hosts.")

KEYS = (("window_s", "min_targets"), ("hour_s", "hour_min_targets"), ("day_s", "day_min_targets"))


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    f = ctx.A.filter(~pl.col("sender_router")).rename({"ts": "first_ts"}).with_columns(
        pl.col("first_ts").alias("last_ts"))
    out = []
    accept, needs = learned_need(ctx.peaks, "arp", "sender")
    for h, g in distinct_over_horizons(f, "sender", ["target"], horizons(c, KEYS), accept):
        dev = g["sender"][0]
        need = needs[(dev, h.seconds)]
        a, b = span(g)
        targets = g["target"].to_list()
        imp = poisson_importance(g.height, 1.0)
        expl = (f"{dev} asked ARP for {g.height} different addresses ({fmt_list(targets, 3)}) within "
                f"{dur(a, b)} ({horizon_text(h, need)}); a host asks for its gateway and the few peers it talks "
                f"to, a sweep asks for the whole segment.")
        refs = [int(r) for r in g["ref"].to_list()]
        out.append(ctx.breach(MODEL, dev, [], a, b, imp, expl, [], refs,
                              {"targets": g.height, "first": targets[0], "last": targets[-1],
                               "horizon": h.name, "horizon_s": h.seconds, **need.details()}))
    return out
