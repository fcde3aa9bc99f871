"""Unusual Activity from New Device: a device first seen after learning (recently) that trips
other models, speaks an ICS protocol, or contacts many internal hosts. Runs after the others."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from plantwatch.core.decode.schema import APP_NAMES
from plantwatch.core.detection.models.base import NS, Context, Model, fmt_list, hours_text
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance, rate

MODEL = Model(
    "device.new", "Unusual Activity from New Device", "Device", "high", "entry", ("T0848", "T0866"), True,
    "A device never seen while learning, first seen recently, that trips other models, speaks an "
    "ICS protocol or contacts many internal hosts.")


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts / NS, tz=UTC).strftime("%Y-%m-%d %H:%M")


def run(ctx: Context) -> list[Breach]:
    if ctx.cold or ctx.D.height == 0:
        return []
    c = ctx.mcfg(MODEL)
    min_hosts = int(c["min_internal_hosts"])
    new_h = float(ctx.cfg["baseline"]["new_device_hours"])
    new = ctx.D.filter(~pl.col("known") & ~pl.col("external") & pl.col("first_ts").is_not_null())
    out = []
    for d in new.iter_rows(named=True):
        dev = d["device"]
        mine = [b for b in ctx.breaches if b.device == dev
                and b.first_ts - d["first_ts"] <= new_h * 3600 * NS]
        as_c = ctx.S.filter(pl.col("c") == dev)
        hosts = as_c.filter(~pl.col("s_ext") & ~pl.col("s_group"))["s"].n_unique()
        apps = ctx.ops.filter(pl.col("src") == dev)["app"].unique().to_list()
        ics = sorted(APP_NAMES.get(int(a), str(a)) for a in apps)
        if not mine and not ics and hosts < min_hosts:
            continue
        # explanations and details quote titles, for people; the breach's own fields hold ids
        models = sorted({ctx.title_of(b.model) for b in mine})
        reasons = []
        if models:
            reasons.append(f"tripped {len(models)} model(s) ({fmt_list(models, 3)})")
        if ics:
            reasons.append(f"spoke {', '.join(ics)}")
        if hosts >= min_hosts:
            reasons.append(f"contacted {hosts} internal hosts")
        ends = [b.last_ts for b in mine] or ([int(as_c["last_ts"].max())] if as_c.height else [])
        last = max(ends) if ends else d["first_ts"]
        lam = rate(0, ctx.hours_b, max(3600.0, (last - d["first_ts"]) / NS))
        imp = poisson_importance(1 + len(models) + (2 if ics else 0) + (1 if hosts >= min_hosts else 0), lam)
        imp = max([imp] + [b.importance for b in mine])
        who = dev + (f" ({d['name']}" + (f", {d['vendor']}" if d["vendor"] else "") + ")"
                     if d["name"] else (f" ({d['vendor']})" if d["vendor"] else ""))
        expl = (f"{who} was first seen {_when(d['first_ts'])} and never in {hours_text(ctx.hours_b)} "
                f"of learning; since then it {'; '.join(reasons)}.")
        first = ctx.S.filter((pl.col("c") == dev) | (pl.col("s") == dev)).sort("first_ts").head(1)
        sids = first["session_id"].to_list() + [s for b in mine for s in b.sessions[:3]]
        refs = first["ref"].to_list() + [r for b in mine for r in b.refs[:3]]
        targets = [t for b in mine for t in b.devices[1:4]]
        out.append(ctx.breach(MODEL, dev, targets, d["first_ts"], last, imp, expl,
                              list(dict.fromkeys(sids)), list(dict.fromkeys(refs)),
                              {"first_seen": d["first_ts"], "models": models, "ics": ics,
                               "internal_hosts": hosts, "vendor": d["vendor"], "name": d["name"]}))
    return out
