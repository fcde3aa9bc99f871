"""ICS Command Flood: ACTION operations (writes, commands) from one source to one target at a rate
far above the pair's learned rate, or above a fixed bound when the pair has no history: a flood
of writes outranks a single one, and the explanation states the rate.

Operations are counted per session (the context holds a count per session and operation), so
the rate is the session's count over its duration (at least `min_span_s`)."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.schema import CLS_ACTION
from plantwatch.core.detection.models.base import NS, Context, Model, dur, fmt_list, hours_text
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance

MODEL = Model(
    "ics.action_rate", "ICS Command Flood", "ICS", "high", "impact", ("T0806", "T0855"), False,
    "ACTION operations sent to one target at a rate far above what the pair did while learning "
    "(or above a fixed bound when it never did): a flood of writes or commands.")


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    min_ops, min_span = int(c["min_operations"]), float(c["min_span_s"])
    factor, cold_per_min = float(c["factor"]), float(c["cold_per_minute"])
    f = ctx.ops.filter(pl.col("cls") == CLS_ACTION)
    if f.height == 0:
        return []
    g = f.group_by(["session_id", "src", "dst"], maintain_order=True).agg(
        pl.col("count").sum().alias("n"), pl.col("key_b").sum().alias("n_b"), pl.col("name").unique().alias("names"),
        pl.col("first_ts").min(), pl.col("last_ts").max(), pl.col("ref").min(), pl.col("src_role").first())
    g = g.filter(pl.col("n") >= min_ops)
    out = []
    for r in g.iter_rows(named=True):
        span_s = max(min_span, (r["last_ts"] - r["first_ts"]) / NS)
        per_min = r["n"] / span_s * 60
        if r["n_b"] > 0 and ctx.hours_b > 0:
            learned_per_min = r["n_b"] / (ctx.hours_b * 60)
            expected = max(learned_per_min * factor, cold_per_min / factor) * span_s / 60
            base = (f"the pair sent these operations {r['n_b']:,} times in {hours_text(ctx.hours_b)} of learning "
                    f"({learned_per_min:.2g} per minute)")
        else:
            expected = cold_per_min * span_s / 60
            base = (f"{'there is no baseline yet' if ctx.cold else 'the pair never sent them while learning'}; "
                    f"more than {cold_per_min:g} per minute is a flood")
        if r["n"] <= expected:
            continue
        imp = poisson_importance(r["n"], expected)
        expl = (f"{r['src']} sent {r['n']:,} ACTION operation(s) ({fmt_list(sorted(r['names']))}) to {r['dst']} "
                f"within {dur(r['first_ts'], r['last_ts'])}, {per_min:,.0f} per minute; {base}.")
        out.append(ctx.breach(MODEL, r["src"], [r["dst"]], r["first_ts"], r["last_ts"], imp, expl,
                              [r["session_id"]], [r["ref"]],
                              {"operations": r["n"], "per_minute": round(per_min, 1), "baseline_operations": r["n_b"],
                               "expected": round(expected, 2)}))
    return out
