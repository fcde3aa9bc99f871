"""The pattern of life: what is normal for each device, pair, port and ICS operation.

Learned from sessions (core/sessions.SESSIONS), never from single packets: a batch of sessions is
folded into small aggregate tables keyed by device pairs (`Aggregates.add`), and those are merged
into the `Baseline` (`Baseline.merge`), optionally leaving out the devices that breached, so an
attack in progress is never learned into normal. The tables:

- edges: client -> server:port (proto, app): sessions, failed, first/last seen. Gives peers, ports
  and protocols used and served, failure rates, and external endpoints with their prevalence
  (how many internal devices use each).
- ops: ICS operations sender -> receiver (app, code, class, name): count, sessions, first/last.
- vol: per pair and port and direction (up = client to server): active hours, the largest hour,
  and the sum and sum of squares of log1p(bytes per hour), for "unusual data volume".
- rdp: RDP cookie users per pair; ja3: TLS client fingerprints per device.
- hours: the distinct hours of packet time the baseline has seen (its length of learning).
- peaks: the most distinct targets each source reached over each horizon (failed connections,
  DISCOVER operations, rare external endpoints, ARP requests; core/detection/peaks.py).

Everything is persisted by core/store/state.py (attributes starting with "_"), so the
baseline lives in the store and survives restarts; `device_table` is the readable summary.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from plantwatch.core.decode.addr import ip_texts
from plantwatch.core.detection.peaks import PEAKS, empty_peaks, fold_peaks
from plantwatch.core.flows.sessions import FAILED_STATES, session_ops
from plantwatch.core.flows.stateful import ComponentState, Stateful

HOUR = 3_600_000_000_000
U = pl.UInt64()

EDGES = {"c_hi": U, "c_lo": U, "s_hi": U, "s_lo": U, "proto": pl.UInt8(), "port": pl.Int32(),
         "app": pl.UInt8(), "sessions": pl.Int64(), "ok": pl.Int64(), "failed": pl.Int64(),
         "nosni": pl.Int64(), "first_ts": pl.Int64(), "last_ts": pl.Int64()}
OPS = {"src_hi": U, "src_lo": U, "dst_hi": U, "dst_lo": U, "app": pl.UInt8(), "code": pl.Int32(),
       "cls": pl.UInt8(), "name": pl.String(), "count": pl.Int64(), "sessions": pl.Int64(),
       "first_ts": pl.Int64(), "last_ts": pl.Int64()}
VOL_HOURS = {"c_hi": U, "c_lo": U, "s_hi": U, "s_lo": U, "port": pl.Int32(), "hour": pl.Int64(),
             "up": pl.Int64(), "down": pl.Int64()}
VOL = {"c_hi": U, "c_lo": U, "s_hi": U, "s_lo": U, "port": pl.Int32(), "measure": pl.String(),
       "hours": pl.Int64(), "max": pl.Int64(), "slog": pl.Float64(), "slog2": pl.Float64()}
RDP = {"c_hi": U, "c_lo": U, "s_hi": U, "s_lo": U, "user": pl.String(), "sessions": pl.Int64(),
       "first_ts": pl.Int64(), "last_ts": pl.Int64()}
JA3 = {"c_hi": U, "c_lo": U, "ja3": pl.String(), "sessions": pl.Int64()}
HOURS = {"hour": pl.Int64()}

_PAIR = ["c_hi", "c_lo", "s_hi", "s_lo"]
_EDGE_KEY = [*_PAIR, "proto", "port", "app"]
_OP_KEY = ["src_hi", "src_lo", "dst_hi", "dst_lo", "app", "code", "cls", "name"]


def _empty(schema: dict) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def _renamed(sessions: pl.DataFrame) -> pl.DataFrame:
    return sessions.select(
        "session_id", pl.col("client_hi").alias("c_hi"), pl.col("client_lo").alias("c_lo"),
        pl.col("server_hi").alias("s_hi"), pl.col("server_lo").alias("s_lo"), "proto",
        pl.col("server_port").fill_null(0).alias("port"), pl.col("app").fill_null(0), "state",
        "first_ts", "last_ts", pl.col("payload_c2s").fill_null(0), pl.col("payload_s2c").fill_null(0),
        "rdp_cookie", "tls_ja3_hash", "tls_no_sni")


def _fold_edges(e: pl.DataFrame) -> pl.DataFrame:
    return e.group_by(_EDGE_KEY).agg(
        pl.col("sessions").sum(), pl.col("ok").sum(), pl.col("failed").sum(), pl.col("nosni").sum(),
        pl.col("first_ts").min(), pl.col("last_ts").max()).select(list(EDGES)).cast(EDGES)


def _fold_ops(o: pl.DataFrame) -> pl.DataFrame:
    return o.group_by(_OP_KEY).agg(
        pl.col("count").sum(), pl.col("sessions").sum(), pl.col("first_ts").min(),
        pl.col("last_ts").max()).select(list(OPS)).cast(OPS)


def _fold_vol_hours(v: pl.DataFrame) -> pl.DataFrame:
    return v.group_by([*_PAIR, "port", "hour"]).agg(pl.col("up").sum(), pl.col("down").sum()).select(
        list(VOL_HOURS)).cast(VOL_HOURS)


def _fold_rdp(r: pl.DataFrame) -> pl.DataFrame:
    return r.group_by([*_PAIR, "user"]).agg(pl.col("sessions").sum(), pl.col("first_ts").min(),
                                            pl.col("last_ts").max()).select(list(RDP)).cast(RDP)


def _fold_ja3(j: pl.DataFrame) -> pl.DataFrame:
    return j.group_by(["c_hi", "c_lo", "ja3"]).agg(pl.col("sessions").sum()).select(list(JA3)).cast(JA3)


def vol_stats(vh: pl.DataFrame) -> pl.DataFrame:
    """Per-hour volumes (VOL_HOURS) to per-key statistics (VOL), one row per direction."""
    if vh.height == 0:
        return _empty(VOL)
    long = pl.concat([
        vh.select(*_PAIR, "port", pl.lit("up").alias("measure"), pl.col("up").alias("b")),
        vh.select(*_PAIR, "port", pl.lit("down").alias("measure"), pl.col("down").alias("b")),
    ]).filter(pl.col("b") > 0)
    # sorted so each key's floats are summed in one order: the batch's row order varies from run
    # to run, and a float sum in another order differs in its last bits (a store must replay exactly)
    long = long.sort([*_PAIR, "port", "measure", "b"])
    lg = pl.col("b").cast(pl.Float64).log1p()
    return long.group_by([*_PAIR, "port", "measure"]).agg(
        pl.len().cast(pl.Int64).alias("hours"), pl.col("b").max().alias("max"), lg.sum().alias("slog"),
        (lg * lg).sum().alias("slog2")).select(list(VOL)).cast(VOL)


class Aggregates:
    """What a run saw, folded per batch: the same keys as the baseline (not yet merged)."""

    def __init__(self) -> None:
        self.edges: list[pl.DataFrame] = []
        self.ops: list[pl.DataFrame] = []
        self.vol: list[pl.DataFrame] = []
        self.rdp: list[pl.DataFrame] = []
        self.ja3: list[pl.DataFrame] = []
        self.hours: list[pl.DataFrame] = []

    def add(self, sessions: pl.DataFrame, sops: pl.DataFrame | None = None) -> None:
        """Fold one batch of sessions (SESSIONS). `sops` is session_ops(sessions) when known."""
        if sessions.height == 0:
            return
        s = _renamed(sessions)
        failed = pl.col("state").is_in(list(FAILED_STATES))
        self.edges.append(s.group_by(_EDGE_KEY).agg(
            pl.len().cast(pl.Int64).alias("sessions"),
            (~failed & (pl.col("state") != "attempted")).sum().cast(pl.Int64).alias("ok"),
            failed.sum().cast(pl.Int64).alias("failed"),
            pl.col("tls_no_sni").fill_null(False).sum().cast(pl.Int64).alias("nosni"),
            pl.col("first_ts").min(), pl.col("last_ts").max()).select(list(EDGES)).cast(EDGES))
        so = sops if sops is not None else session_ops(sessions)
        so = so.filter(pl.col("from_client"))
        if so.height:
            t = sessions.select("session_id", "first_ts", "last_ts")
            o = so.join(t, on="session_id", how="left").group_by(
                ["src_hi", "src_lo", "dst_hi", "dst_lo", "app", "code", "cls", "name"]).agg(
                pl.col("count").sum(), pl.col("session_id").n_unique().cast(pl.Int64).alias("sessions"),
                pl.col("first_ts").min(), pl.col("last_ts").max())
            self.ops.append(o.select(list(OPS)).cast(OPS))
        self.vol.append(s.with_columns((pl.col("first_ts") // HOUR).alias("hour")).group_by(
            [*_PAIR, "port", "hour"]).agg(pl.col("payload_c2s").sum().alias("up"),
                                           pl.col("payload_s2c").sum().alias("down"))
            .select(list(VOL_HOURS)).cast(VOL_HOURS))
        r = s.filter(pl.col("rdp_cookie").is_not_null())
        if r.height:
            self.rdp.append(r.group_by([*_PAIR, pl.col("rdp_cookie").alias("user")]).agg(
                pl.len().cast(pl.Int64).alias("sessions"), pl.col("first_ts").min(),
                pl.col("last_ts").max()).select(list(RDP)).cast(RDP))
        j = s.filter(pl.col("tls_ja3_hash").is_not_null())
        if j.height:
            self.ja3.append(j.group_by(["c_hi", "c_lo", pl.col("tls_ja3_hash").alias("ja3")]).agg(
                pl.len().cast(pl.Int64).alias("sessions")).select(list(JA3)).cast(JA3))
        self.hours.append(s.select((pl.col("first_ts") // HOUR).alias("hour")).unique())
        if len(self.edges) >= 32:
            self.compact()

    def compact(self) -> None:
        def one(parts: list[pl.DataFrame], schema: dict, fold) -> list[pl.DataFrame]:
            return [fold(pl.concat(parts))] if parts else []

        self.edges = one(self.edges, EDGES, _fold_edges)
        self.ops = one(self.ops, OPS, _fold_ops)
        self.vol = one(self.vol, VOL_HOURS, _fold_vol_hours)
        self.rdp = one(self.rdp, RDP, _fold_rdp)
        self.ja3 = one(self.ja3, JA3, _fold_ja3)
        self.hours = [pl.concat(self.hours).unique()] if self.hours else []

    def frames(self) -> dict[str, pl.DataFrame]:
        self.compact()

        def get(parts: list[pl.DataFrame], schema: dict) -> pl.DataFrame:
            return parts[0] if parts else _empty(schema)

        return {"edges": get(self.edges, EDGES), "ops": get(self.ops, OPS),
                "vol_hours": get(self.vol, VOL_HOURS), "rdp": get(self.rdp, RDP),
                "ja3": get(self.ja3, JA3), "hours": get(self.hours, HOURS).cast(HOURS)}


def _drop_devices(df: pl.DataFrame, a: tuple[str, str], b: tuple[str, str] | None,
                  devs: pl.DataFrame) -> pl.DataFrame:
    """Rows where neither endpoint is one of `devs` (hi, lo)."""
    if devs.height == 0 or df.height == 0:
        return df
    keep = df.join(devs.rename({"hi": a[0], "lo": a[1]}), on=list(a), how="anti")
    if b is not None:
        keep = keep.join(devs.rename({"hi": b[0], "lo": b[1]}), on=list(b), how="anti")
    return keep


class Baseline(Stateful):
    """The learned pattern of life (see the module docstring)."""

    # version 2 counts the learn-mode runs; a version 1 state (or an unversioned one without
    # the count) did not, and resumes with 0, as if no run had been named normal. Version 3 keeps
    # fan-out peaks; a version 2 state learned none (the models' floors apply until it does)
    STATE_VERSION = 3
    STATE_FRAMES = ("_edges", "_ops", "_vol", "_rdp", "_ja3", "_hours", "_peaks")
    STATE_SCALARS = ("_first_ts", "_last_ts", "_runs", "_learn_runs")
    STATE_MIGRATIONS = {**Stateful.STATE_MIGRATIONS,
                        1: lambda st: ComponentState(2, st.frames, {"_learn_runs": 0, **st.scalars}),
                        2: lambda st: ComponentState(3, {**st.frames, "_peaks": empty_peaks()}, st.scalars)}

    def __init__(self) -> None:
        self._edges = _empty(EDGES)
        self._ops = _empty(OPS)
        self._vol = _empty(VOL)
        self._rdp = _empty(RDP)
        self._ja3 = _empty(JA3)
        self._hours = _empty(HOURS)
        self._peaks = empty_peaks()
        self._first_ts = 0
        self._last_ts = 0
        self._runs = 0
        self._learn_runs = 0   # runs the user named as normal (learn mode)

    # --- learning -----------------------------------------------------------------------------

    def merge(self, agg: Aggregates, exclude: pl.DataFrame | None = None, learned: bool = False) -> None:
        """Fold a run's aggregates in, leaving out every row that involves a device of `exclude`
        (a frame of hi, lo): the devices that breached are not learned while they misbehave.
        `learned`: the user named the run normal (learn mode)."""
        f = agg.frames()
        ex = exclude if exclude is not None else pl.DataFrame(schema={"hi": U, "lo": U})
        ex = ex.select(pl.col("hi").cast(U), pl.col("lo").cast(U)).unique()
        e = _drop_devices(f["edges"], ("c_hi", "c_lo"), ("s_hi", "s_lo"), ex)
        o = _drop_devices(f["ops"], ("src_hi", "src_lo"), ("dst_hi", "dst_lo"), ex)
        v = _drop_devices(f["vol_hours"], ("c_hi", "c_lo"), ("s_hi", "s_lo"), ex)
        r = _drop_devices(f["rdp"], ("c_hi", "c_lo"), ("s_hi", "s_lo"), ex)
        j = _drop_devices(f["ja3"], ("c_hi", "c_lo"), None, ex)
        if e.height:
            self._edges = _fold_edges(pl.concat([self._edges, e]))
            lo, hi = int(e["first_ts"].min()), int(e["last_ts"].max())
            self._first_ts = lo if not self._first_ts else min(self._first_ts, lo)
            self._last_ts = max(self._last_ts, hi)
        if o.height:
            self._ops = _fold_ops(pl.concat([self._ops, o]))
        if v.height:
            vs = vol_stats(v)
            self._vol = pl.concat([self._vol, vs]).group_by([*_PAIR, "port", "measure"]).agg(
                pl.col("hours").sum(), pl.col("max").max(), pl.col("slog").sum(),
                pl.col("slog2").sum()).select(list(VOL)).cast(VOL)
        if r.height:
            self._rdp = _fold_rdp(pl.concat([self._rdp, r]))
        if j.height:
            self._ja3 = _fold_ja3(pl.concat([self._ja3, j]))
        if f["hours"].height:
            self._hours = pl.concat([self._hours, f["hours"]]).unique().sort("hour")
        self._runs += 1
        self._learn_runs += int(learned)

    def add_peaks(self, peaks: pl.DataFrame) -> None:
        """Fold a run's fan-out peaks (core/detection/peaks.PEAKS) in: the largest per key."""
        if peaks.height:
            self._peaks = fold_peaks(pl.concat([self._peaks, peaks.select(list(PEAKS)).cast(PEAKS)]))

    # --- questions ---------------------------------------------------------------------------

    @property
    def peaks(self) -> pl.DataFrame:
        return self._peaks

    @property
    def edges(self) -> pl.DataFrame:
        return self._edges

    @property
    def ops(self) -> pl.DataFrame:
        return self._ops

    @property
    def vol(self) -> pl.DataFrame:
        return self._vol

    @property
    def rdp(self) -> pl.DataFrame:
        return self._rdp

    @property
    def ja3(self) -> pl.DataFrame:
        return self._ja3

    @property
    def empty(self) -> bool:
        return self._edges.height == 0

    def hours(self) -> float:
        """How long the baseline has watched the network, in hours of packet time."""
        if self.empty:
            return 0.0
        span = (self._last_ts - self._first_ts) / HOUR
        return max(float(self._hours.height), span)

    def observations(self) -> int:
        """Sessions and ICS operations the baseline holds."""
        return int(self._edges["sessions"].sum() or 0) + int(self._ops["count"].sum() or 0)

    def mature(self, min_hours: float, min_observations: int | None = None) -> bool:
        """Mature after `min_hours` of traffic; a baseline the user provided (learn mode) is
        normal by their word, so it is mature as soon as it holds `min_observations`."""
        if self.hours() >= min_hours:
            return True
        return self._learn_runs > 0 and min_observations is not None and self.observations() >= min_observations

    def maturity_text(self, min_hours: float, min_observations: int) -> str:
        """One statement of the network's maturity, the same in every output."""
        h = (self._last_ts - self._first_ts) / HOUR if self._last_ts else 0.0
        span = f"{h:.1f} h" if h >= 1 else f"{h * 60:.0f} min"
        obs = f"{self.observations():,} sessions and operations observed over {span}"
        if self.hours() >= min_hours:
            return f"mature: {obs}"
        if self.mature(min_hours, min_observations):
            return f"mature by observation: {obs} of traffic named normal"
        if self._learn_runs:
            return f"learning: {obs} (needs {min_observations:,} observations or {min_hours:g} h)"
        return f"learning: {obs} (needs {min_hours:g} h, or a capture named normal with --learn)"

    def devices(self) -> pl.DataFrame:
        """Devices known to the baseline: hi, lo, first_ts, last_ts, sessions, peers, failed
        (as client), served (answered sessions as a server)."""
        e = self._edges
        if e.height == 0:
            return pl.DataFrame(schema={"hi": U, "lo": U, "first_ts": pl.Int64(), "last_ts": pl.Int64(),
                                        "sessions": pl.Int64(), "peers": pl.Int64(), "failed": pl.Int64(),
                                        "served": pl.Int64()})
        as_c = e.select(pl.col("c_hi").alias("hi"), pl.col("c_lo").alias("lo"), "first_ts", "last_ts",
                        "sessions", pl.col("s_hi").alias("p_hi"), pl.col("s_lo").alias("p_lo"),
                        "failed", pl.lit(0, pl.Int64).alias("served"))
        as_s = e.filter(pl.col("ok") > 0).select(
            pl.col("s_hi").alias("hi"), pl.col("s_lo").alias("lo"), "first_ts", "last_ts", "sessions",
            pl.col("c_hi").alias("p_hi"), pl.col("c_lo").alias("p_lo"), pl.lit(0, pl.Int64).alias("failed"),
            pl.col("ok").alias("served"))
        both = pl.concat([as_c, as_s])
        return both.group_by(["hi", "lo"]).agg(
            pl.col("first_ts").min(), pl.col("last_ts").max(), pl.col("sessions").sum(),
            pl.struct("p_hi", "p_lo").n_unique().cast(pl.Int64).alias("peers"),
            pl.col("failed").sum(), pl.col("served").sum()).sort(["hi", "lo"])

    def maturity(self, min_hours: float, min_sessions: int, network_min_hours: float,
                 min_observations: int | None = None, network_min_observations: int | None = None) -> pl.DataFrame:
        """Per known device: maturity (learning | mature) and its reasons in words. In a baseline
        the user provided, a device is mature once it took part in `min_observations` sessions
        and operations, however short the capture."""
        d = self.devices()
        net_ok = self.mature(network_min_hours, network_min_observations)
        o = self._ops
        op_n = pl.concat([o.select(pl.col("src_hi").alias("hi"), pl.col("src_lo").alias("lo"), "count"),
                          o.select(pl.col("dst_hi").alias("hi"), pl.col("dst_lo").alias("lo"), "count")]
                         ).group_by("hi", "lo").agg(pl.col("count").sum().alias("ops_n"))
        d = d.join(op_n, on=["hi", "lo"], how="left").with_columns(pl.col("ops_n").fill_null(0))
        span_h = (pl.col("last_ts") - pl.col("first_ts")) / HOUR
        observed = pl.lit(self._learn_runs > 0 and min_observations is not None) & (
            (pl.col("sessions") + pl.col("ops_n")) >= (min_observations or 0))
        ok = ((span_h >= min_hours) | observed) & (pl.col("sessions") >= min_sessions) & pl.lit(net_ok)
        reasons = pl.format("seen over {} h in {} session(s) with {} peer(s)",
                            span_h.round(1), pl.col("sessions"), pl.col("peers"))
        need = f"{network_min_hours:g} h" + (f", or {network_min_observations:,} observations of a capture named normal"
                                              if network_min_observations else "")
        net = "" if net_ok else (f"; the network has {self.hours():.1f} h of learning and "
                                 f"{self.observations():,} observations (needs {need})")
        short = pl.when((span_h < min_hours) & ~observed).then(pl.lit(f"; needs {min_hours:g} h")).otherwise(pl.lit(""))
        few = pl.when(pl.col("sessions") < min_sessions).then(
            pl.lit(f"; needs {min_sessions} sessions")).otherwise(pl.lit(""))
        return d.with_columns(
            pl.when(ok).then(pl.lit("mature")).otherwise(pl.lit("learning")).alias("maturity"),
            pl.concat_str([reasons, short, few, pl.lit(net)]).alias("reasons")).drop("ops_n")

    def device_table(self, min_hours: float, min_sessions: int, network_min_hours: float,
                     min_observations: int | None = None, network_min_observations: int | None = None) -> pl.DataFrame:
        """The readable summary written to the store's baseline_devices table."""
        m = self.maturity(min_hours, min_sessions, network_min_hours, min_observations, network_min_observations)
        if m.height == 0:
            return pl.DataFrame()
        e = self._edges

        def top_ports(hi: str, lo: str, name: str) -> pl.DataFrame:
            return e.group_by([hi, lo, "port"]).agg(pl.col("sessions").sum()).sort(
                [hi, lo, "sessions", "port"], descending=[False, False, True, False]).group_by(
                [hi, lo], maintain_order=True).agg(pl.col("port").head(20).alias(name)).rename(
                {hi: "hi", lo: "lo"})

        used = top_ports("c_hi", "c_lo", "ports_used")
        served = top_ports("s_hi", "s_lo", "ports_served")
        ops = self._ops.group_by(["src_hi", "src_lo"]).agg(pl.col("count").sum().alias("ics_ops")).rename(
            {"src_hi": "hi", "src_lo": "lo"})
        m = m.join(used, on=["hi", "lo"], how="left").join(served, on=["hi", "lo"], how="left").join(
            ops, on=["hi", "lo"], how="left")
        texts = ip_texts(m["hi"].to_numpy(), m["lo"].to_numpy())
        return m.select(
            pl.Series("device", texts, dtype=pl.String),
            pl.col("hi").reinterpret(signed=True), pl.col("lo").reinterpret(signed=True),
            "maturity", "reasons", "first_ts", "last_ts", "sessions", "peers",
            pl.col("ports_used").map_elements(lambda v: json.dumps(v.to_list()), return_dtype=pl.String),
            pl.col("ports_served").map_elements(lambda v: json.dumps(v.to_list()), return_dtype=pl.String),
            pl.col("ics_ops").fill_null(0),
        )

    def meta(self, network_min_hours: float, network_min_observations: int | None = None) -> dict[str, str]:
        return {"first_ts": str(self._first_ts), "last_ts": str(self._last_ts),
                "hours": f"{self.hours():.2f}", "runs": str(self._runs),
                "maturity": "mature" if self.mature(network_min_hours, network_min_observations) else "learning",
                "maturity_text": self.maturity_text(network_min_hours, network_min_observations or 0)}


def key_hash(*cols: np.ndarray) -> np.ndarray:
    """Row hash of integer key columns (for fast membership tests against the baseline)."""
    from plantwatch.core.decode.addr import hash_u64

    return hash_u64(*[np.asarray(c) for c in cols]).view(np.int64)
