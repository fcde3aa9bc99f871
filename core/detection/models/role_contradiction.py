"""Role Contradiction: a field device acting against its role. A device that serves ICS (a PLC,
an RTU) answers its master; it opening sessions to another field device (polling it, pushing a
file to it, on any port), or to its own master on a non-ICS port, contradicts that role. Needs no history: the roles come from behaviour
in the run; with a baseline, pairs that talked while learning are left alone."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.ics import ICS_PORTS
from plantwatch.core.detection.models.base import (
    Context,
    Model,
    dur,
    evidence,
    fmt_list,
    groups,
    hours_text,
    summarize,
)
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance, rate

MODEL = Model(
    "ics.role_contradiction", "Field Device Acting as Client", "ICS", "high", "lateral movement",
    ("T0886", "T0867"), False,
    "A device that serves ICS (PLC, RTU) opening sessions to another field device, or to its own "
    "master on a non-ICS port: field devices answer their master and do not poll, command or send "
    "files to their peers.")

FIELD = "plc"


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    w = float(c["window_s"])
    ics_port = pl.col("port").is_in(list(ICS_PORTS))
    # each field device's masters: the devices polling it in this run
    masters = ctx.S.filter((pl.col("s_role") == FIELD) & ics_port & ~pl.col("failed")).select(
        pl.col("s").alias("c"), pl.col("c").alias("s"), pl.lit(True).alias("to_master")).unique()
    S = ctx.S.join(masters, on=["c", "s"], how="left").with_columns(pl.col("to_master").fill_null(False))
    # a field device reaching a peer field device on any port, or its own master on a non-ICS port
    f = S.filter((pl.col("c_role") == FIELD) & (pl.col("c") != pl.col("s"))
                 & ((pl.col("s_role") == FIELD) | (pl.col("to_master") & ~ics_port))
                 & ~pl.col("s_group") & ~pl.col("c_ext") & ~pl.col("s_ext")
                 & (pl.lit(ctx.cold) | (pl.col("pair_b") == 0)))
    out = []
    for g in groups(f, ["c"], w, key=["s", "port"]):
        dev, a, b, targets, ports = summarize(g)
        ics = [p for p in ports if p in ICS_PORTS]
        other = [p for p in ports if p not in ICS_PORTS]
        up = int(g["up"].sum())
        lam = rate(0, ctx.hours_b, w)
        imp = poisson_importance(g.height + (2 if up >= int(c["file_bytes"]) else 0), lam)
        what = []
        if ics:
            what.append(f"ICS client traffic on port(s) {fmt_list(ics, 4)}")
        if other:
            what.append(f"sessions on non-ICS port(s) {fmt_list(other, 4)}")
        base = ("there is no baseline yet" if ctx.cold else
                f"this pair never talked in {hours_text(ctx.hours_b)} of learning")
        who = "its master" if not g["s_role"].eq(FIELD).any() else "field device(s)"
        expl = (f"{dev}, a field device that serves ICS, opened {g.height} session(s) to {who} "
                f"{fmt_list(targets, 3)} ({'; '.join(what)}; {up:,} bytes sent) within {dur(a, b)}; field "
                f"devices answer their master and do not act as clients of their peers; {base}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"sessions": g.height, "targets": len(targets), "ports": ports,
                               "bytes_sent": up}))
    return out
