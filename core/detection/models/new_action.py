"""Multiple New Action Commands: writes, stops, restarts new for their source and target.

With a baseline: at least `min_keys` new (source, target, protocol, operation) ACTION keys in the
window, or one new critical action (stop, restart, reset...). With none (cold start): critical
actions still fire, and writes do from a device that is neither an engineering workstation nor an
HMI, since nothing else should command a controller.
"""

from __future__ import annotations

import re

import polars as pl

from plantwatch.core.decode.schema import CLS_ACTION
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
    "ics.new_action", "Multiple New Action Commands", "ICS", "critical", "impact", ("T0855", "T0816", "T0836"), False,
    "ACTION operations (writes, stop, start, restart) that the source never sent to that target "
    "while learning; a single stop or restart is enough.", prior_hours=24.0 * 7)


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    w, k_min = float(c["window_s"]), int(c["min_keys"])
    crit = re.compile(c["critical_pattern"])
    f = ctx.ops.filter((pl.col("cls") == CLS_ACTION) & (pl.col("key_b") == 0))
    if f.height == 0:
        return []
    f = f.with_columns(pl.col("name").map_elements(lambda n: bool(crit.search(n or "")),
                                                   return_dtype=pl.Boolean).alias("critical"))
    if ctx.cold:
        f = f.filter(pl.col("critical") | ~pl.col("src_role").is_in(["engineering", "hmi"]))
    out = []
    for g in groups(f, ["src"], w, key=["dst", "app", "code", "name"]):
        n_crit = int(g["critical"].sum())
        if g.height < k_min and n_crit == 0 and not ctx.cold:  # cold: already only stops or odd writers
            continue
        dev = g["src"][0]
        a, b = span(g)
        targets = g["dst"].unique(maintain_order=True).to_list()
        names = g["name"].unique(maintain_order=True).to_list()
        crit_names = g.filter(pl.col("critical"))["name"].unique(maintain_order=True).to_list()
        lam = rate(0, ctx.hours_b, window_s_of(g, w), MODEL.prior_hours)
        x = g.height + 2 * n_crit  # a stop or restart weighs like three new writes
        imp = poisson_importance(x, lam)
        n_ops = int(g["count"].sum())
        if ctx.cold:
            base = (f"there is no baseline yet; {dev} is seen as {g['src_role'][0]}, and "
                    + (f"{fmt_list(crit_names)} change(s) the controller's state" if crit_names
                       else "only engineering workstations and HMIs should write to controllers"))
        else:
            nb = int(g["src_action_b"][0])
            base = (f"none was sent to those targets in {hours_text(ctx.hours_b)} of learning "
                    f"({dev} sent {nb} ACTION operation(s) in all)")
        expl = (f"{dev} sent {n_ops} ACTION operation(s) of {g.height} new kind(s) ({fmt_list(names)}) to "
                f"{fmt_list(targets, 3)} within {dur(a, b)}; {base}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"new_keys": g.height, "operations": names, "critical": crit_names,
                               "count": n_ops},
                              immature=bool(g["src_immature"][0]) and not n_crit))
    return out
