"""Unusual Data Volume: bytes in an hour far above the nearest reference the baseline holds: the
pair's largest hour, else any client of that server and port, else any client of that port on
servers of the same role, else the clients of the source's zone kind and role (0 when devices of that kind never moved such bytes as clients: a field
device sending a file), else the most the source itself sent in an hour. Hours under a floor
relative to the network's own volumes are never unusual (core/detection/context.py).

While the network still learns, a pair that is its own reference (active in `min_reference_hours`
hours of the baseline) is judged against its own hours: its history is enough, whatever the
maturity of the network."""

from __future__ import annotations

import math

import polars as pl

from plantwatch.core.detection.models.base import NS, Context, Model, evidence, hours_text
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import normal_importance

MODEL = Model(
    "net.data_volume", "Unusual Data Volume", "Network", "high", "lateral movement", ("T0867", "T0882"), True,
    "An hour of transfer between two devices far above the largest hour seen for that pair, or "
    "for that server and port when the pair is new.", judges_pairs=True)

HOUR = 3600 * NS


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def run(ctx: Context) -> list[Breach]:
    if ctx.V.height == 0:
        return []
    c = ctx.mcfg(MODEL)
    factor = float(c["factor"])
    # cold: only the pairs that are their own reference; the pooled references need a mature network
    V = ctx.V.filter(pl.col("ref_kind") == "pair") if ctx.cold else ctx.V
    f = V.filter((pl.col("bytes") >= pl.col("floor")) & pl.col("ref_max").is_not_null()
                     & (pl.col("bytes") >= factor * pl.col("ref_max")))
    out = []
    for r in f.sort(["c", "s", "port", "hour", "measure"]).iter_rows(named=True):
        sd = max(0.5, r["ref_sd"] or 0.0)
        imp = normal_importance(math.log1p(r["bytes"]), r["ref_mean"] or 0.0, sd)
        ev = ctx.S.filter((pl.col("c") == r["c"]) & (pl.col("s") == r["s"]) & (pl.col("port") == r["port"])
                          & ((pl.col("first_ts") // HOUR) == r["hour"])).sort("first_ts")
        a = int(ev["first_ts"].min()) if ev.height else r["hour"] * HOUR
        b = int(ev["last_ts"].max()) if ev.height else (r["hour"] + 1) * HOUR
        sids, refs = evidence(ev) if ev.height else ([], [])
        way = "sent to" if r["measure"] == "up" else "received from"
        ref = {"pair": "this pair's largest hour",
               "server port": f"the largest hour of any client of {r['s']}:{r['port']}",
               "server port and role": (f"the largest hour of any client of port {r['port']} on a "
                                        f"{r['s_role']} like {r['s']}"),
               "zone and role": f"the largest hour of any {r['c']}-like client (same zone kind and role)",
               }.get(r["ref_kind"], f"the most {r['c' if r['measure'] == 'up' else 's']} sent in one hour to anyone")
        moved = f"{r['c']} {way} {r['s']} {_mb(r['bytes'])} on port {r['port']} in one hour"
        if r["ref_max"] == 0:
            expl = (f"{moved}; no {r['c']}-like device (same zone kind and role) moved any such bytes as a "
                    f"client in {hours_text(ctx.hours_b)} of learning.")
        else:
            expl = (f"{moved}; {ref} in {hours_text(ctx.hours_b)} of learning was {_mb(r['ref_max'])} "
                    f"({r['bytes'] / max(1, r['ref_max']):.0f}x).")
        if ctx.cold:
            expl += (f" The network is still learning, but this pair is mature by its own "
                     f"{r['pair_hours_b']:.0f} active hour(s) in the baseline.")
        out.append(ctx.breach(MODEL, r["c"], [r["s"]], a, b, imp, expl, sids, refs,
                              {"bytes": r["bytes"], "direction": r["measure"], "port": r["port"],
                               "baseline_max": r["ref_max"], "baseline": r["ref_kind"], "floor": r["floor"],
                               "judged_by": "pair" if ctx.cold else "network"},
                              immature=bool(r["c_immature"]) and not ctx.cold))
    return out
