"""Device Identity Changed: a device states a different firmware, model, serial, module or name
than it did before (S7 SZL, Modbus device identification, CIP identity, BACnet device object).

A stated identity is not a rate: the change itself is the finding, so its importance is the
configured weight, not a probability under the baseline. Evidence is the last frame that stated
the old value and the first that stated the new one. A planned update is labelled by triage: a
maintenance window whose targets (or devices) name the device and that holds the first frame of
the new value covers the breach (core/detection/triage/match.py; class REPROGRAM).
"""

from __future__ import annotations

import polars as pl

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.decode.addr import ip_texts
from plantwatch.core.detection.models.base import Context, Model, fmt_list
from plantwatch.core.detection.records import Breach

MODEL = Model(
    "ics.identity_changed", "Device Identity Changed", "ICS", "high", "impact", ("T0839", "T0849"), False,
    "A device states another firmware, module, serial or name than it did: an update, a swapped "
    "module, or something answering in its place.")


def _frame(ref: int) -> str:
    p = PacketRef.unpack(int(ref))
    return f"capture {p.capture_id} frame {p.frame}"


def run(ctx: Context) -> list[Breach]:
    ch = ctx.identity_changes
    if ch is None or ch.height == 0:
        return []
    weight = float(ctx.mcfg(MODEL)["importance"])
    ch = ch.with_columns(pl.Series("device", ip_texts(ch["hi"].to_numpy(), ch["lo"].to_numpy()), dtype=pl.String))
    out = []
    for (dev, comp, new_ref), g in ch.sort("new_ts", "attribute").group_by(
            ["device", "component", "new_ref"], maintain_order=True):
        rows = list(g.iter_rows(named=True))
        what = fmt_list([f"{r['attribute']} {r['old_value']!r} -> {r['new_value']!r}" for r in rows], 6)
        where = f" ({comp})" if comp else ""
        first = rows[0]
        expl = (f"{dev}{where} now states {what} over {first['source']} ({_frame(new_ref)}); the old "
                f"value was last stated in {_frame(first['old_ref'])}.")
        details = {"component": comp, "source": first["source"],
                   "changes": [{"attribute": r["attribute"], "old": r["old_value"], "new": r["new_value"],
                                "old_ref": r["old_ref"], "new_ref": r["new_ref"],
                                "old_ts": r["old_ts"], "new_ts": r["new_ts"]} for r in rows]}
        refs = [first["old_ref"], new_ref]
        out.append(ctx.breach(MODEL, dev, [], int(first["old_ts"]), int(first["new_ts"]), weight, expl,
                              [], refs, details))
    return out
