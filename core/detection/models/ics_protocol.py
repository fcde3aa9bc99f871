"""Experimental / Possible ICS Protocol: an ICS protocol from a device that never spoke it, or on
a port that is not the protocol's."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.ics import APP_PORTS
from plantwatch.core.decode.schema import APP_NAMES
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
    "ics.protocol", "Experimental / Possible ICS Protocol", "ICS", "high", "lateral movement", ("T0869", "T0885"), True,
    "ICS protocol traffic from a device that never used that protocol while learning, or an ICS "
    "protocol on a port that is not its own.")

_STD = [(app, p) for app, m in APP_PORTS.items() for ports in m.values() for p in ports]


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    w = float(c["window_s"])
    std = pl.DataFrame({"app": [a for a, _ in _STD], "std_port": [p for _, p in _STD]},
                       schema={"app": pl.UInt8(), "std_port": pl.Int32()}).unique()
    s = ctx.S.filter(pl.col("app").is_in(list(APP_PORTS)) & (pl.col("n_ops") > 0))
    if s.height == 0:
        return []
    on_std = s.join(std, left_on=["app", "port"], right_on=["app", "std_port"], how="semi")["session_id"]
    s = s.with_columns(pl.col("session_id").is_in(on_std.implode()).alias("std"))
    f = s.filter(~pl.col("std") | ((pl.col("c_app_b") == 0) & ~pl.lit(ctx.cold)))
    out = []
    for g in groups(f, ["c", "app"], w, key=["s", "port"]):
        dev = g["c"][0]
        proto = APP_NAMES.get(int(g["app"][0]), "ICS")
        a, b = span(g)
        targets = g["s"].unique(maintain_order=True).to_list()
        odd = sorted(set(g.filter(~pl.col("std"))["port"].to_list()))
        lam = rate(0, ctx.hours_b, window_s_of(g, w))
        imp = poisson_importance(g.height, lam)
        if odd:
            why = f"{proto} on non-standard port(s) {fmt_list(odd)}"
        else:
            n_dev = int(g["net_app_clients_b"][0])
            why = (f"first {proto} from {dev}; it never used {proto} in {hours_text(ctx.hours_b)} of "
                   f"learning ({n_dev} device(s) did)")
        expl = (f"{why}: {g.height} session(s) with {int(g['n_ops'].sum())} operation(s) to "
                f"{fmt_list(targets, 3)} within {dur(a, b)}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, targets, a, b, imp, expl, sids, refs,
                              {"protocol": proto, "sessions": g.height, "odd_ports": odd},
                              immature=bool(g["c_immature"][0])))
    return out
