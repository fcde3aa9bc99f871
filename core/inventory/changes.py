"""Which device rows can have changed since the devices table was last written.

A device row is a function of the inventory's tables at its own address (packets sent and
received, ARP bindings, names, session edges as client or server), of the names bound to its MAC,
of whether its MAC is a router's (the set of router MACs is the one global input), and of the
zones. `Touched` collects the addresses and MACs the inventory was fed since the last write; the
pipeline writes only those rows when the zones are the ones the table was written with
(plantwatch.core.pipeline.devices_out), so a small run into a big store does not rewrite every
device. It is not pipeline state: after a load, the stored table is the one the state wrote.
"""

from __future__ import annotations

import polars as pl

_ADDR = {"hi": pl.UInt64(), "lo": pl.UInt64()}


class Touched:
    def __init__(self) -> None:
        self._addrs: list[pl.DataFrame] = []
        self._macs: list[pl.Series] = []
        self.routers = pl.Series("mac", [], dtype=pl.UInt64())   # router MACs at the last write

    def addresses(self, frame: pl.DataFrame, hi: str = "hi", lo: str = "lo") -> None:
        if frame.height:
            self._addrs.append(frame.select(pl.col(hi).alias("hi"), pl.col(lo).alias("lo"))
                               .drop_nulls().unique().cast(_ADDR))
            if len(self._addrs) >= 64:
                self._addrs = [pl.concat(self._addrs).unique()]

    def sessions(self, sessions: pl.DataFrame | None) -> None:
        """Both ends of each session."""
        if sessions is not None and sessions.height:
            self.addresses(sessions, "client_hi", "client_lo")
            self.addresses(sessions, "server_hi", "server_lo")

    def overlay(self, old: pl.DataFrame | None, new: pl.DataFrame | None) -> None:
        """Open sessions replacing the ones counted before: the ends of those that are not the
        same (a session that got packets, ended or began; one that did not counts the same)."""
        same = ["session_id", "last_ts", "pkts_c2s", "pkts_s2c", "state", "n_ops"]
        if old is None or old.height == 0 or new is None or new.height == 0:
            self.sessions(old)
            self.sessions(new)
            return
        self.sessions(old.join(new.select(same), on=same, how="anti"))
        self.sessions(new.join(old.select(same), on=same, how="anti"))

    def macs(self, macs: pl.Series) -> None:
        if macs.len():
            self._macs.append(macs.drop_nulls().unique().cast(pl.UInt64()).rename("mac"))
            if len(self._macs) >= 64:   # a live run feeds batches for days: stay one per MAC
                self._macs = [pl.concat(self._macs).unique()]

    def rows(self, devices: pl.DataFrame, routers: pl.Series, src: pl.DataFrame,
             arp: pl.DataFrame) -> pl.DataFrame:
        """The rows of `devices` that can differ from the last write. `routers`: the router MACs
        now; `src`, `arp`: the inventory's (hi, lo, mac) tables, to find every address a MAC
        whose router standing changed is bound to."""
        moved = pl.concat([routers.cast(pl.UInt64()), self.routers.cast(pl.UInt64())]).to_frame("mac").group_by(
            "mac").len().filter(pl.col("len") == 1)["mac"]
        addrs = list(self._addrs)
        for t in (src, arp):
            hit = t.filter(pl.col("mac").is_in(moved.implode()))
            if hit.height:
                addrs.append(hit.select("hi", "lo").unique().cast(_ADDR))
        macs = pl.concat([moved, *self._macs]) if self._macs else moved
        keys = pl.concat(addrs).unique() if addrs else pl.DataFrame(schema=_ADDR)
        at = devices.select("hi", "lo").with_row_index("_i").join(
            keys.with_columns(pl.lit(True).alias("_t")), on=["hi", "lo"], how="left").sort("_i")["_t"]
        keep = (at.fill_null(False) | devices["mac"].is_in(macs.implode()).fill_null(False)
                | devices["hi"].is_null())
        return devices.filter(keep)

    def written(self, routers: pl.Series) -> None:
        """The devices table now holds every row: start collecting again."""
        self._addrs, self._macs = [], []
        self.routers = routers


__all__ = ["Touched"]
