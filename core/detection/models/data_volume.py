"""Unusual Data Volume: bytes in an hour far above what the pair (or, for a new pair, any client of
that server and port) moved in any hour while learning."""

from __future__ import annotations

import polars as pl

from plantwatch.core.detection.models.base import NS, Context, Model, evidence, hours_text
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import normal_importance

MODEL = Model(
    "net.data_volume", "Unusual Data Volume", "Network", "high", "lateral movement", ("T0867", "T0882"), True,
    "An hour of transfer between two devices far above the largest hour seen for that pair, or "
    "for that server and port when the pair is new.")

HOUR = 3600 * NS


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def run(ctx: Context) -> list[Breach]:
    if ctx.cold or ctx.V.height == 0:
        return []
    c = ctx.mcfg(MODEL)
    min_b, factor = float(c["min_bytes"]), float(c["factor"])
    f = ctx.V.filter((pl.col("bytes") >= min_b) & pl.col("ref_max").is_not_null()
                     & (pl.col("bytes") >= factor * pl.col("ref_max")))
    out = []
    for r in f.sort(["c", "s", "port", "hour", "measure"]).iter_rows(named=True):
        import math

        sd = max(0.5, r["ref_sd"] or 0.0)
        imp = normal_importance(math.log1p(r["bytes"]), r["ref_mean"] or 0.0, sd)
        ev = ctx.S.filter((pl.col("c") == r["c"]) & (pl.col("s") == r["s"]) & (pl.col("port") == r["port"])
                          & ((pl.col("first_ts") // HOUR) == r["hour"])).sort("first_ts")
        a = int(ev["first_ts"].min()) if ev.height else r["hour"] * HOUR
        b = int(ev["last_ts"].max()) if ev.height else (r["hour"] + 1) * HOUR
        sids, refs = evidence(ev) if ev.height else ([], [])
        way = "sent to" if r["measure"] == "up" else "received from"
        ref = ("this pair's largest hour" if r["ref_kind"] == "pair"
               else f"the largest hour of any client of {r['s']}:{r['port']}")
        expl = (f"{r['c']} {way} {r['s']} {_mb(r['bytes'])} on port {r['port']} in one hour; "
                f"{ref} in {hours_text(ctx.hours_b)} of learning was {_mb(r['ref_max'])} "
                f"({r['bytes'] / max(1, r['ref_max']):.0f}x).")
        out.append(ctx.breach(MODEL, r["c"], [r["s"]], a, b, imp, expl, sids, refs,
                              {"bytes": r["bytes"], "direction": r["measure"], "port": r["port"],
                               "baseline_max": r["ref_max"], "baseline": r["ref_kind"]},
                              immature=bool(r["c_immature"])))
    return out
