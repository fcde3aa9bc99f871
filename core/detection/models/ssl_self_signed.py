"""Rare External SSL Self-Signed: a self-signed server certificate from an external endpoint that
few internal devices use."""

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
    span,
    window_s_of,
)
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance, rate

MODEL = Model(
    "tls.self_signed", "Rare External SSL Self-Signed", "Network", "medium", "command and control", ("T0869",), True,
    "An external TLS server with a self-signed certificate that at most a couple of internal "
    "devices ever used.")


def run(ctx: Context) -> list[Breach]:
    if ctx.cold:
        return []
    w = float(ctx.mcfg(MODEL)["window_s"])
    rare = int(ctx.cfg["baseline"]["rare_max_devices"])
    f = ctx.S.filter(pl.col("self_signed") & pl.col("s_ext") & (pl.col("s_prev_b") <= rare))
    out = []
    for g in groups(f, ["c"], w):
        dev = g["c"][0]
        a, b = span(g)
        targets = g["s"].unique(maintain_order=True).to_list()
        subj = g["cert_subject"].drop_nulls().unique(maintain_order=True).to_list()
        prev = int(g["s_prev_b"].max())
        lam = rate(0, ctx.hours_b, window_s_of(g, w))
        imp = poisson_importance(g.height, lam)
        expl = (f"{dev} received a self-signed certificate ({fmt_list(subj, 2)}) from "
                f"{fmt_list(targets, 3)} in {g.height} session(s) within {dur(a, b)}; in "
                f"{hours_text(ctx.hours_b)} of learning {prev} internal device(s) used that endpoint.")
        sids, refs = evidence(g, "ev_tls")
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"sessions": g.height, "subjects": subj, "prevalence": prev},
                              immature=bool(g["c_immature"][0])))
    return out
