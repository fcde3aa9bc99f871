"""Device identity merged per device: one current value per (device, component, source protocol,
attribute), with
the frames that first and last proved it, and the changes of tracked attributes.

Fed with the decoders' sparse IDENTITY frames (core/decode/identity.py), batch by batch. A value
that differs from the current one becomes current and, for TRACKED attributes (firmware, model,
serial, module, name...), gives an identity change quoting the old value with the last frame that
proved it and the new value with its first frame. Vendor ids are named from the ODVA (CIP) and
ASHRAE (BACnet) tables in core/data. Kept between runs by core/store/state.py (its frames), so a
capture analysed later is compared with what earlier ones showed.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import polars as pl

from plantwatch.core.capture.refs import ref_expr
from plantwatch.core.decode.identity import IDENTITY, TRACKED
from plantwatch.core.flows.stateful import Stateful

ATTRS: dict[str, pl.DataType] = {
    "hi": pl.UInt64(), "lo": pl.UInt64(), "component": pl.String(), "attribute": pl.String(),
    "value": pl.String(), "source": pl.String(), "first_ts": pl.Int64(), "last_ts": pl.Int64(),
    "first_ref": pl.Int64(), "last_ref": pl.Int64(), "seen": pl.Int64(),
}
CHANGES: dict[str, pl.DataType] = {
    "hi": pl.UInt64(), "lo": pl.UInt64(), "component": pl.String(), "attribute": pl.String(),
    "source": pl.String(), "old_value": pl.String(), "new_value": pl.String(),
    "old_ts": pl.Int64(), "new_ts": pl.Int64(), "old_ref": pl.Int64(), "new_ref": pl.Int64(),
}
# per source: two protocols of one device may word one attribute differently (a CIP vendor name
# and a Modbus vendor string), which is no change of identity
_KEY = ["hi", "lo", "component", "source", "attribute"]
_VENDOR_TABLES = {"enip": "odva_vendors.tsv", "bacnet": "bacnet_vendors.tsv"}


@cache
def vendor_table(source: str) -> dict[int, str]:
    """Vendor id -> registered name for a protocol's vendor-id space (empty when it has none)."""
    name = _VENDOR_TABLES.get(source)
    if name is None:
        return {}
    out = {}
    for line in resources.files("plantwatch.core.data").joinpath(name).read_text("utf-8").splitlines():
        if line and not line.startswith("#"):
            k, v = line.split("\t", 1)
            out[int(k)] = v.strip()
    return out


def _named_vendors(obs: pl.DataFrame) -> pl.DataFrame:
    """A `vendor` record beside each vendor id the tables can name."""
    ids = obs.filter(pl.col("attribute") == "vendor_id")
    if ids.height == 0:
        return obs
    names = [vendor_table(s).get(int(v)) if v.isdigit() else None
             for s, v in zip(ids["source"], ids["value"], strict=True)]
    named = ids.with_columns(pl.Series("value", names, dtype=pl.String), pl.lit("vendor").alias("attribute"))
    return pl.concat([obs, named.filter(pl.col("value").is_not_null())])


class IdentityTable(Stateful):
    STATE_VERSION = 1
    STATE_FRAMES = ("_attrs", "_changes")

    def __init__(self) -> None:
        self._attrs = pl.DataFrame(schema=ATTRS)
        self._changes = pl.DataFrame(schema=CHANGES)

    def update(self, identity: pl.DataFrame) -> pl.DataFrame:
        """Fold one batch's IDENTITY rows in; returns the changes they made (CHANGES)."""
        if identity.height == 0:
            return pl.DataFrame(schema=CHANGES)
        obs = _named_vendors(identity.select(list(IDENTITY)))
        obs = obs.with_columns(ref_expr("file_id", "frame").alias("ref")).sort("ts", "frame", maintain_order=True)
        # runs of one value per key, in packet order: each run is one stretch of a value
        obs = obs.with_columns((pl.col("value") != pl.col("value").shift(1).over(_KEY))
                               .fill_null(True).cum_sum().over(_KEY).alias("run"))
        runs = obs.group_by([*_KEY, "run"], maintain_order=True).agg(
            pl.col("value").first(), pl.col("ts").min().alias("first_ts"),
            pl.col("ts").max().alias("last_ts"), pl.col("ref").first().alias("first_ref"),
            pl.col("ref").last().alias("last_ref"), pl.len().cast(pl.Int64).alias("seen")).sort(
            [*_KEY, "run"])
        changes: list[dict] = []
        cur = {tuple(r[k] for k in _KEY): r for r in self._attrs.iter_rows(named=True)}
        for r in runs.iter_rows(named=True):
            key = tuple(r[k] for k in _KEY)
            old = cur.get(key)
            if old is not None and old["value"] == r["value"]:
                old.update(last_ts=max(old["last_ts"], r["last_ts"]), last_ref=r["last_ref"],
                           seen=old["seen"] + r["seen"])
                continue
            if old is not None and r["attribute"] in TRACKED:
                changes.append({"hi": r["hi"], "lo": r["lo"], "component": r["component"],
                                "attribute": r["attribute"], "source": r["source"],
                                "old_value": old["value"], "new_value": r["value"],
                                "old_ts": old["last_ts"], "new_ts": r["first_ts"],
                                "old_ref": old["last_ref"], "new_ref": r["first_ref"]})
            cur[key] = {k: r[k] for k in ATTRS}
        self._attrs = pl.DataFrame(list(cur.values()), schema=ATTRS) if cur else self._attrs
        found = pl.DataFrame(changes, schema=CHANGES)
        if found.height:
            self._changes = pl.concat([self._changes, found])
        return found

    def attributes(self) -> pl.DataFrame:
        """Every device's current identity attributes (ATTRS)."""
        return self._attrs.sort(_KEY)

    def changes(self) -> pl.DataFrame:
        """Every change seen, across runs (CHANGES)."""
        return self._changes
