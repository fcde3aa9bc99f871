"""Multiple New Action Commands: writes, stops, restarts new for their source and target.

With a baseline: at least `min_keys` new (source, target, protocol, operation) ACTION keys in the
window, or one new critical action (stop, restart, reset...). With none (cold start): critical
actions still fire, and writes do from a device that is neither an engineering workstation nor an
HMI, since nothing else should command a controller; and pairs mature by their own observations
(`pair_min_observations`) are judged as with a baseline.

The rate enters the importance too: the new operations' count over their span (at least
`rate_min_span_s`) against what the source's learned ACTION rate allows (`rate_factor` times it),
or `cold_per_minute` when it has none, so a flood of new writes outranks a single one.
"""

from __future__ import annotations

import re

import polars as pl

from plantwatch.core.decode.schema import CLS_ACTION
from plantwatch.core.detection.models.base import (
    NS,
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
from plantwatch.core.detection.scoring import MAX_IMPORTANCE, poisson_importance, rate
from plantwatch.core.inventory.roles import UNVERIFIED, is_trusted

MODEL = Model(
    "ics.new_action", "Multiple New Action Commands", "ICS", "critical", "impact", ("T0855", "T0816", "T0836"), False,
    "ACTION operations (writes, stop, start, restart) that the source never sent to that target "
    "while learning; a single stop or restart is enough.", prior_hours=24.0 * 7, judges_pairs=True)


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    w, k_min = float(c["window_s"]), int(c["min_keys"])
    min_span, factor, cold_per_min = float(c["rate_min_span_s"]), float(c["rate_factor"]), float(c["cold_per_minute"])
    crit = re.compile(c["critical_pattern"])
    f = ctx.ops.filter((pl.col("cls") == CLS_ACTION) & (pl.col("key_b") == 0))
    if f.height == 0:
        return []
    f = f.with_columns(pl.col("name").map_elements(lambda n: bool(crit.search(n or "")),
                                                   return_dtype=pl.Boolean).alias("critical"))
    # cold: stops and writers that should not write fire alone ("alone"); a pair mature by its own
    # observations is judged as with a baseline. An unverified role (`engineering?`) is no trust
    alone = pl.lit(ctx.cold) & ~ctx.pair_mature() & ~is_trusted(pl.col("src_role"))
    f = f.with_columns(alone.alias("alone"))
    if ctx.cold:
        f = f.filter(pl.col("critical") | pl.col("alone") | ctx.pair_mature())
    out = []
    for g in groups(f, ["src"], w, key=["dst", "app", "code", "name"]):
        n_crit = int(g["critical"].sum())
        if g.height < k_min and n_crit == 0 and not g["alone"].any():
            continue
        by_pair = ctx.cold and bool(g.select(ctx.pair_mature().all()).item())
        dev = g["src"][0]
        a, b = span(g)
        targets = g["dst"].unique(maintain_order=True).to_list()
        names = g["name"].unique(maintain_order=True).to_list()
        crit_names = g.filter(pl.col("critical"))["name"].unique(maintain_order=True).to_list()
        lam = rate(0, ctx.hours_b, window_s_of(g, w), MODEL.prior_hours)
        x = g.height + 2 * n_crit  # a stop or restart weighs like three new writes
        n_ops = int(g["count"].sum())
        span_s = max(min_span, (b - a) / NS)
        per_min = n_ops / span_s * 60
        nb = int(g["src_action_b"][0])
        learned_per_min = nb / (ctx.hours_b * 60) if nb and ctx.hours_b > 0 else 0.0
        bound = max(learned_per_min * factor, cold_per_min)
        expected = bound * span_s / 60
        # a flood adds its own improbability to that of the new kinds
        flood = poisson_importance(n_ops, expected) if n_ops > expected else 0.0
        imp = min(MAX_IMPORTANCE, poisson_importance(x, lam) + flood)
        pace = (f"{per_min:,.1f} per minute, above the {bound:.3g} per minute "
                + ("the source's learned rate allows" if learned_per_min else "expected of anyone")
                if flood else f"{per_min:,.1f} per minute")
        if by_pair:
            base = (f"none was sent to those targets while learning ({dev} sent {nb} ACTION operation(s) "
                    f"in all); {ctx.pair_text(int(g['pair_obs_b'].min()))}")
        elif ctx.cold:
            role = str(g["src_role"][0])
            role = f"{role[:-1]} (unverified)" if role.endswith(UNVERIFIED) else role
            base = (f"there is no baseline yet; {dev} is seen as {role}, and "
                    + (f"{fmt_list(crit_names)} change(s) the controller's state" if crit_names
                       else "only engineering workstations and HMIs should write to controllers"))
        else:
            base = (f"none was sent to those targets in {hours_text(ctx.hours_b)} of learning "
                    f"({dev} sent {nb} ACTION operation(s) in all)")
        expl = (f"{dev} sent {n_ops} ACTION operation(s) of {g.height} new kind(s) ({fmt_list(names)}) to "
                f"{fmt_list(targets, 3)} within {dur(a, b)} ({pace}); {base}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"new_keys": g.height, "operations": names, "critical": crit_names,
                               "count": n_ops, "per_minute": round(per_min, 1), "rate_bound": round(bound, 3),
                               "judged_by": "pair" if by_pair else ("cold start" if ctx.cold else "network")},
                              immature=bool(g["src_immature"][0]) and not n_crit
                              and not g.select(ctx.pair_mature().all()).item()))
    return out
