"""Beaconing: a device calling one rare external endpoint at regular intervals with requests of
steady size (implant call-home). The statistics follow RITA's beacon analysis: the Bowley skew
and the median absolute deviation (relative to the median) of the intervals between connections
and of the bytes sent, each turned into a 0..1 regularity score, with the share of the span's
hours that hold a connection and the smallness of the requests; their mean is the beacon score. Only endpoints rare for the network (few devices use them) and, with a baseline,
new for the device are considered."""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.detection.models.base import NS, Context, Model, dur, evidence, hours_text
from plantwatch.core.detection.records import Breach

MODEL = Model(
    "net.beacon", "Beaconing to Rare External", "Network", "high", "command and control", ("T0869", "T0885"),
    False,
    "Connections from one device to a rare external endpoint at regular intervals with requests "
    "of steady size: the pattern of an implant calling home.")


def bowley(x: np.ndarray) -> float:
    q1, q2, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    return 0.0 if q3 == q1 else float((q3 + q1 - 2 * q2) / (q3 - q1))


def madm_ratio(x: np.ndarray) -> float:
    med = float(np.median(x))
    return 1.0 if med <= 0 else float(np.median(np.abs(x - med)) / med)


def regularity(x: np.ndarray) -> tuple[float, float]:
    """(skew score, dispersion score), each 1 for perfectly regular values."""
    return 1.0 - min(1.0, abs(bowley(x))), max(0.0, 1.0 - madm_ratio(x))


def run(ctx: Context) -> list[Breach]:
    c = ctx.mcfg(MODEL)
    n_min, span_min, thr = int(c["min_connections"]), float(c["min_span_s"]), float(c["min_score"])
    rare_max = int(ctx.cfg["baseline"]["rare_max_devices"])
    ext = ctx.S.filter(pl.col("s_ext") & ~pl.col("c_ext"))
    if ext.height == 0:
        return []
    users = ext.group_by("s").agg(pl.col("c").n_unique().alias("users"))
    f = ext.join(users, on="s").filter((pl.col("users") <= rare_max) & (pl.col("s_prev_b") <= rare_max)
                                      & (pl.lit(ctx.cold) | (pl.col("pair_b") == 0)))
    out = []
    for g in f.sort("first_ts").partition_by(["c", "s"], maintain_order=True):
        if g.height < n_min:
            continue
        t = g["first_ts"].to_numpy()
        if (t[-1] - t[0]) / NS < span_min:
            continue
        iv = np.diff(t) / NS
        ts_skew, ts_mad = regularity(iv)
        up = g["up"].to_numpy().astype(float)
        ds_skew, ds_mad = regularity(up)
        hours = (t - t[0]) // (3600 * NS)
        coverage = len(np.unique(hours)) / (int(hours[-1]) + 1)       # hours of the span with a connection
        small = max(0.0, 1.0 - float(np.median(up)) / 65535)          # beacons carry little
        score = (ts_skew + ts_mad + coverage + ds_skew + ds_mad + small) / 6
        if score < thr:
            continue
        dev, dst = g["c"][0], g["s"][0]
        a, b = int(g["first_ts"].min()), int(g["last_ts"].max())
        med_iv, med_up = float(np.median(iv)), float(np.median(g["up"].to_numpy()))
        imp = min(12.0, 2.0 * np.log2(g.height) * score)
        base = ("there is no baseline yet" if ctx.cold else
                f"{dev} never reached it in {hours_text(ctx.hours_b)} of learning, and "
                f"{int(g['s_prev_b'][0])} device(s) of the network did")
        expl = (f"{dev} connected {g.height} times to rare external {dst} over {dur(a, b)}, every "
                f"{med_iv / 60:.0f} min (median; deviation {madm_ratio(iv):.0%}), sending {med_up:.0f} bytes "
                f"each (deviation {madm_ratio(up):.0%}): beacon score "
                f"{score:.2f} of 1; {base}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(MODEL, dev, [dst], a, b, imp, expl, sids, refs,
                              {"connections": g.height, "median_interval_s": round(med_iv, 1),
                               "median_bytes_sent": med_up, "score": round(score, 3),
                               "interval_skew": round(ts_skew, 3), "interval_dispersion": round(ts_mad, 3),
                               "size_skew": round(ds_skew, 3), "size_dispersion": round(ds_mad, 3),
                               "hour_coverage": round(coverage, 3), "smallness": round(small, 3)}))
    return out
