"""Unusual Admin RDP Session: an RDP cookie user that looks administrative, from a source or to a
target that is new for it."""

from __future__ import annotations

import re

import polars as pl

from plantwatch.core.detection.models.base import (
    Context,
    Model,
    dur,
    evidence,
    groups,
    hours_text,
    span,
    window_s_of,
)
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance, rate

MODEL = Model(
    "rdp.admin", "Unusual Admin RDP Session", "Compliance", "high", "privilege", ("T0886", "T0859"), True,
    "RDP with an administrative user (mstshash cookie) on a pair, or for a user and target, never "
    "seen while learning; worse from IT into OT.")


def run(ctx: Context) -> list[Breach]:
    if ctx.cold:
        return []
    c = ctx.mcfg(MODEL)
    w = float(c["window_s"])
    pat = re.compile(c["admin_pattern"])
    s = ctx.S.filter(pl.col("rdp_user").is_not_null())
    if s.height == 0:
        return []
    s = s.filter(pl.col("rdp_user").map_elements(lambda u: bool(pat.search(u)), return_dtype=pl.Boolean))
    f = s.filter((pl.col("pair_b") == 0) | (pl.col("rdp_user_s_b") == 0))
    out = []
    for g in groups(f, ["c", "s", "rdp_user"], w):
        dev, dst, user = g["c"][0], g["s"][0], g["rdp_user"][0]
        a, b = span(g)
        it_ot = bool(g["c_it"][0] and g["s_ics"][0])
        lam = rate(0, ctx.hours_b, window_s_of(g, w))
        imp = poisson_importance(g.height + (1 if it_ot else 0), lam)
        admins = int(g["s_rdp_users_b"][0])
        expl = (f"{dev} opened {g.height} RDP session(s) as '{user}' to {dst}"
                + (" (from IT into OT)" if it_ot else "")
                + f" within {dur(a, b)}; in {hours_text(ctx.hours_b)} of learning this pair never "
                f"used RDP with that user, and {dst} saw {admins} RDP user(s).")
        sids, refs = evidence(g, "ev_rdp")
        out.append(ctx.breach(MODEL, dev, [dst], a, b, imp, expl, sids, refs,
                              {"user": user, "sessions": g.height, "it_to_ot": it_ot,
                               "baseline_users_of_target": admins},
                              immature=bool(g["c_immature"][0])))
    return out
