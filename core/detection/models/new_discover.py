"""Multiple New Discover Commands: several DISCOVER operations new for their source and target.

Counted over several horizons like the failed-connection models: a burst (`min_keys` new keys, or
`min_targets` targets, within `window_s`), and reconnaissance spread over an hour or a day (one
identity read every twenty minutes): `hour_min_targets` / `day_min_targets` distinct targets of new
DISCOVER operations within `hour_s` / `day_s`. A longer horizon only reports what no shorter one
already did (one breach per reconnaissance). A source needs more targets when learning saw it, or
several normal sources, reach more over that horizon (core/detection/peaks.py)."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.schema import APP_DNP3, CLS_DISCOVER, CLS_READ
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
    distinct_over_horizons,
    horizon_name,
    horizons,
    learned_need,
)
from plantwatch.core.detection.peaks import Need
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance, rate

DNP3_READ = 1  # application function code READ
LONG_KEYS = (("hour_s", "hour_min_targets"), ("day_s", "day_min_targets"))

MODEL = Model(
    "ics.new_discover", "Multiple New Discover Commands", "ICS", "high", "discovery", ("T0888", "T0846"), True,
    "Several DISCOVER operations (identification, SZL reads, block lists) that the source never "
    "sent to those targets while learning; DNP3 reads from a source new to the outstation count too.",
    judges_pairs=True)


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    w, k_min, t_min = float(c["window_s"]), int(c["min_keys"]), int(c["min_targets"])
    # DNP3 reads (integrity polls of all classes) from a source new to the outstation are
    # reconnaissance too: an outstation answers its master, not a newcomer. Only READ requests
    # (function 1): a CONFIRM (0) acknowledges what the outstation sent and asks for nothing.
    dnp3_recon = ((pl.col("app") == APP_DNP3) & (pl.col("cls") == CLS_READ) & (pl.col("code") == DNP3_READ)
                  & (pl.col("pair_ops_b") == 0))
    # while the network learns, only pairs mature by their own observations are judged
    f = ctx.ops.filter((((pl.col("cls") == CLS_DISCOVER) & (pl.col("key_b") == 0)) | dnp3_recon) & ctx.judged())
    found: list[tuple[str, float, pl.DataFrame, Need]] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    for g in groups(f, ["src"], w, key=["dst", "app", "code", "name"]):
        need = ctx.peaks.need("discover", w, g["src"][0], t_min)
        n_targets = g["dst"].n_unique()
        if (n_targets >= need.targets) if need.reason != "floor" else (g.height >= k_min or n_targets >= t_min):
            found.append((horizon_name(w), w, g, need))
            taken.setdefault(g["src"][0], []).append(span(g))
    # the longer horizons count distinct targets, past what the window above already reported
    accept, needs = learned_need(ctx.peaks, "discover", "src")
    for h, g in distinct_over_horizons(f, "src", ["dst"], horizons(c, LONG_KEYS), accept, taken):
        found.append((h.name, h.seconds, g, needs[(g["src"][0], h.seconds)]))
    out = []
    for horizon, hw, g, need in found:
        targets = g["dst"].unique(maintain_order=True).to_list()
        dev = g["src"][0]
        a, b = span(g)
        names = g["name"].unique(maintain_order=True).to_list()
        lam = rate(0, ctx.hours_b, window_s_of(g, hw))
        imp = poisson_importance(g.height, lam)
        nb = int(g["src_discover_b"][0])
        recon = "DISCOVER operation(s) (or DNP3 reads from a source new to the outstation)" if (
            g["app"] == APP_DNP3).any() else "DISCOVER operation(s)"
        expl = (f"{dev} sent {g.height} {recon} new for their target ({fmt_list(names)}) "
                f"to {len(targets)} device(s) ({fmt_list(targets, 3)}) within {dur(a, b)} (counted over the "
                f"{horizon} horizon" + (f", {need.text()}" if need.text() else "") + "); in "
                f"{hours_text(ctx.hours_b)} of learning it sent {nb} DISCOVER operation(s) in all"
                + (f"; {ctx.pair_text(int(g['pair_obs_b'].min()))}" if ctx.cold else "") + ".")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"new_keys": g.height, "operations": names, "targets": len(targets),
                               "baseline_discover": nb, "horizon": horizon, "horizon_s": hw, **need.details(),
                               "judged_by": "pair" if ctx.cold else "network"},
                              immature=bool(g["src_immature"][0]) and not g.select(ctx.pair_mature().all()).item()))
    return out
