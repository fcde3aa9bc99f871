"""Learned fan-out peaks: the most distinct targets each source reached over each horizon while
learning, for the models that count targets (failed connections, DISCOVER operations, rare external
endpoints, ARP requests). A plant's asset-management server sweeps every night; its own peak lets
it, and a source doing the same for the first time still fires.

`FanOut` collects a run's occurrences (source, target, time; one per target and minute) and turns
them into peaks per (measure, horizon, source): the largest number of distinct targets in any
sliding window of the horizon, counted exactly by a sweep over the intervals each target keeps
a window busy. The baseline keeps the largest peak ever seen per key (core/detection/baseline.py).

`LearnedPeaks` answers, at detection, how many distinct targets a source needs over a horizon:
max(the model's floor, `fanout_margin` times the source's own peak, `fanout_margin` times the peak
that `fanout_sources` normal sources reached). The network's part is what several sources did,
not the busiest one: one busy scanner raises only its own threshold. Cold start: the floors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from plantwatch.core.decode.addr import ip_texts
from plantwatch.core.decode.ics import ICS_APPS, ICS_PORTS
from plantwatch.core.decode.schema import CLS_DISCOVER
from plantwatch.core.flows.sessions import FAILED_STATES

NS = 1_000_000_000
BUCKET_NS = 60 * NS   # a target is kept once per source and minute
U = pl.UInt64()

# measure -> the model whose horizons (window_s, hour_s, day_s) it is counted over
MEASURES: dict[str, str] = {
    "failed_internal": "net.failed_internal",
    "failed_ics": "ics.failed_connections",
    "discover": "ics.new_discover",
    "external": "net.external",
    "arp": "net.arp_sweep",
}
HORIZON_KEYS = ("window_s", "hour_s", "day_s")

OCC = {"measure": pl.String(), "src_hi": U, "src_lo": U, "t_hi": U, "t_lo": U, "t_port": pl.Int32(),
       "ts": pl.Int64()}
PEAKS = {"measure": pl.String(), "horizon_s": pl.Int64(), "src_hi": U, "src_lo": U, "peak": pl.Int64()}
_TARGET = ["measure", "src_hi", "src_lo", "t_hi", "t_lo", "t_port"]


def empty_peaks() -> pl.DataFrame:
    return pl.DataFrame(schema=PEAKS)


def fold_peaks(p: pl.DataFrame) -> pl.DataFrame:
    """One row per (measure, horizon, source): the largest peak."""
    return p.group_by(["measure", "horizon_s", "src_hi", "src_lo"]).agg(pl.col("peak").max()).select(
        list(PEAKS)).cast(PEAKS).sort(["measure", "horizon_s", "src_hi", "src_lo"])


def horizons_s(cfg: dict[str, Any], measure: str) -> list[int]:
    c = cfg.get(MEASURES[measure], {})
    return sorted({int(float(c[k])) for k in HORIZON_KEYS if k in c})


class FanOut:
    """A run's fan-out occurrences, folded per batch (see the module docstring). `kinds(hi, lo)`
    gives the zone kind of addresses (external, ot, it, internal)."""

    def __init__(self, kinds: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        self._kinds = kinds
        self._parts: list[pl.DataFrame] = []

    def add_sessions(self, sessions: pl.DataFrame, sops: pl.DataFrame) -> None:
        if sessions.height == 0:
            return
        s = sessions.select(
            "session_id", pl.col("client_hi").alias("src_hi"), pl.col("client_lo").alias("src_lo"),
            pl.col("server_hi").alias("t_hi"), pl.col("server_lo").alias("t_lo"),
            pl.col("server_port").fill_null(0).cast(pl.Int32).alias("t_port"), pl.col("app").fill_null(0),
            pl.col("state").is_in(list(FAILED_STATES)).alias("failed"),
            pl.col("to_group").fill_null(False).alias("group"), pl.col("first_ts").alias("ts"))
        ck = self._kinds(s["src_hi"].to_numpy(), s["src_lo"].to_numpy())
        sk = self._kinds(s["t_hi"].to_numpy(), s["t_lo"].to_numpy())
        s = s.with_columns(pl.Series("c_ext", ck == "external"), pl.Series("s_ext", sk == "external"),
                           pl.Series("s_ot", sk == "ot"))
        internal_fail = pl.col("failed") & ~pl.col("s_ext") & ~pl.col("group")
        # as the ICS failure model sees them: an ICS port or protocol, or an OT device
        ics = pl.col("t_port").is_in(list(ICS_PORTS)) | pl.col("app").is_in(list(ICS_APPS)) | pl.col("s_ot")
        parts = [
            s.filter(internal_fail).with_columns(pl.lit("failed_internal").alias("measure")),
            s.filter(internal_fail & ics).with_columns(pl.lit("failed_ics").alias("measure")),
            s.filter(pl.col("s_ext") & ~pl.col("c_ext")).with_columns(
                pl.lit("external").alias("measure"), pl.lit(0, pl.Int32).alias("t_port")),
        ]
        if sops.height:
            d = sops.filter(pl.col("from_client") & (pl.col("cls") == CLS_DISCOVER)).select("session_id").unique()
            parts.append(s.join(d, on="session_id", how="semi").with_columns(
                pl.lit("discover").alias("measure"), pl.lit(0, pl.Int32).alias("t_port")))
        self._add(pl.concat([p.select(list(OCC)).cast(OCC) for p in parts]))

    def add_arp(self, req: pl.DataFrame) -> None:
        """ARP requests (arp_spa, arp_tpa as IPv4 integers, ts)."""
        if req.height == 0:
            return
        mapped = 0xFFFF << 32
        self._add(req.select(
            pl.lit("arp").alias("measure"), pl.lit(0, U).alias("src_hi"),
            (pl.col("arp_spa").cast(U) | mapped).alias("src_lo"), pl.lit(0, U).alias("t_hi"),
            (pl.col("arp_tpa").cast(U) | mapped).alias("t_lo"), pl.lit(0, pl.Int32).alias("t_port"),
            "ts").cast(OCC))

    def _add(self, occ: pl.DataFrame) -> None:
        if occ.height:
            self._parts.append(_dedup(occ))
        if len(self._parts) >= 32:
            self._parts = [_dedup(pl.concat(self._parts))]

    def occurrences(self) -> pl.DataFrame:
        return _dedup(pl.concat(self._parts)) if self._parts else pl.DataFrame(schema=OCC)

    def peaks(self, cfg: dict[str, Any], exclude: pl.DataFrame, rare_servers: pl.DataFrame) -> pl.DataFrame:
        """PEAKS of the run, leaving out the sources of `exclude` (hi, lo: devices that breached)
        and counting only external endpoints of `rare_servers` (s_hi, s_lo) for "external"."""
        occ = self.occurrences()
        if exclude.height:
            occ = occ.join(exclude.rename({"hi": "src_hi", "lo": "src_lo"}), on=["src_hi", "src_lo"], how="anti")
        ext = occ.filter(pl.col("measure") == "external").join(
            rare_servers.rename({"s_hi": "t_hi", "s_lo": "t_lo"}), on=["t_hi", "t_lo"], how="semi")
        occ = pl.concat([occ.filter(pl.col("measure") != "external"), ext])
        out = [window_peaks(occ.filter(pl.col("measure") == m), w)
               .with_columns(pl.lit(m).alias("measure"), pl.lit(w, pl.Int64).alias("horizon_s"))
               for m in MEASURES for w in horizons_s(cfg, m)]
        out = [p for p in out if p.height]
        return fold_peaks(pl.concat([p.select(list(PEAKS)).cast(PEAKS) for p in out])) if out else empty_peaks()


def rare_servers(edges: pl.DataFrame, rare_max: int) -> pl.DataFrame:
    """Servers (s_hi, s_lo) that at most `rare_max` distinct clients used (baseline edges)."""
    return edges.group_by(["s_hi", "s_lo"]).agg(pl.struct("c_hi", "c_lo").n_unique().alias("n")).filter(
        pl.col("n") <= rare_max).select("s_hi", "s_lo")


def _dedup(occ: pl.DataFrame) -> pl.DataFrame:
    return occ.with_columns((pl.col("ts") // BUCKET_NS).alias("_b")).group_by([*_TARGET, "_b"]).agg(
        pl.col("ts").min()).drop("_b").select(list(OCC))


def window_peaks(occ: pl.DataFrame, window_s: int) -> pl.DataFrame:
    """Per source (src_hi, src_lo, peak): the most distinct targets within any `window_s`. Each
    occurrence keeps a window ending in [ts, ts + window] busy; a target's overlapping intervals
    merge; the peak is the most intervals open at once."""
    if occ.height == 0:
        return pl.DataFrame(schema={"src_hi": U, "src_lo": U, "peak": pl.Int64()})
    w = int(window_s) * NS
    key = ["src_hi", "src_lo", "t_hi", "t_lo", "t_port"]
    d = occ.sort([*key, "ts"])
    same = pl.all_horizontal([pl.col(k) == pl.col(k).shift(1) for k in key]).fill_null(False)
    d = d.with_columns((~same | ((pl.col("ts") - pl.col("ts").shift(1)) > w)).cum_sum().alias("run"))
    iv = d.group_by(["src_hi", "src_lo", "run"]).agg(pl.col("ts").min().alias("a"), (pl.col("ts").max() + w).alias("b"))
    ev = pl.concat([iv.select("src_hi", "src_lo", pl.col("a").alias("t"), pl.lit(1, pl.Int64).alias("d")),
                    iv.select("src_hi", "src_lo", pl.col("b").alias("t"), pl.lit(-1, pl.Int64).alias("d"))])
    # at one instant an interval opening counts before one closing: both hold that window end
    ev = ev.sort(["src_hi", "src_lo", "t", "d"], descending=[False, False, False, True])
    ev = ev.with_columns(pl.col("d").cum_sum().over(["src_hi", "src_lo"]).alias("open"))
    return ev.group_by(["src_hi", "src_lo"]).agg(pl.col("open").max().cast(pl.Int64).alias("peak"))


@dataclass(frozen=True)
class Need:
    """How many distinct targets a source needs over a horizon, and why."""
    targets: int
    reason: str        # "floor", "source" (its own learned peak) or "network"
    peak: int = 0      # the learned peak it derives from
    margin: float = 1.0
    sources: int = 0

    def text(self) -> str:
        """A clause for the explanation ('' for the floor)."""
        if self.reason == "source":
            return (f"above {self.margin:g} times the {self.peak} it reached itself over this horizon "
                    f"while learning")
        if self.reason == "network":
            return (f"above {self.margin:g} times the {self.peak} that {self.sources} normal sources "
                    f"reached over this horizon while learning")
        return ""

    def details(self) -> dict[str, Any]:
        return {"threshold": self.targets, "threshold_from": self.reason, "learned_peak": self.peak}


class LearnedPeaks:
    """The baseline's PEAKS, for thresholds at detection (see the module docstring)."""

    def __init__(self, peaks: pl.DataFrame | None = None, margin: float = 1.5, sources: int = 3) -> None:
        self.margin, self.sources = float(margin), int(sources)
        self._own: dict[tuple[str, int], dict[str, int]] = {}
        self._net: dict[tuple[str, int], int] = {}
        if peaks is None or peaks.height == 0:
            return
        texts = ip_texts(peaks["src_hi"].to_numpy(), peaks["src_lo"].to_numpy())
        for (m, h, p), src in zip(peaks.select("measure", "horizon_s", "peak").iter_rows(), texts, strict=True):
            self._own.setdefault((m, int(h)), {})[str(src)] = int(p)
        for k, own in self._own.items():
            top = sorted(own.values(), reverse=True)
            self._net[k] = top[self.sources - 1] if len(top) >= self.sources else 0

    @classmethod
    def from_config(cls, peaks: pl.DataFrame | None, cfg: dict[str, Any]) -> LearnedPeaks:
        b = cfg["baseline"]
        return cls(peaks, float(b["fanout_margin"]), int(b["fanout_sources"]))

    def need(self, measure: str, horizon_s: float, src: str, floor: int) -> Need:
        k = (measure, int(horizon_s))
        own = self._own.get(k, {}).get(src, 0)
        net = self._net.get(k, 0)

        def above(p: int) -> int:
            return math.floor(self.margin * p) + 1 if p else 0

        best = max((floor, "floor", 0), (above(own), "source", own), (above(net), "network", net),
                   key=lambda t: (t[0], t[1] == "floor", t[1] == "source"))
        return Need(int(best[0]), best[1], int(best[2]), self.margin, self.sources if best[1] == "network" else 0)


def zone_kinds(zones: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A `kinds(hi, lo)` for FanOut from the zones (plantwatch.core.inventory.zones.Zones)."""
    def kinds(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        return zones.classify(hi.astype(np.uint64), lo.astype(np.uint64))[1]
    return kinds
