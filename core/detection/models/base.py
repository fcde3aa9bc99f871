"""What every model shares: its metadata, the context it reads, and the breach it writes.

A model is a module with `MODEL` (a `Model`) and `run(ctx) -> list[Breach]`
(plantwatch.core.detection.contracts.DetectionModel). It reads the run's sessions and operations
already joined with the baseline (`Context.S`, `Context.ops`, `Context.V`, `Context.D`), whose
columns are declared once in plantwatch.core.detection.features: the frames hold those columns
and no other, so reading an undeclared one fails. It groups them vectorised with polars, and for
each group that crosses its thresholds calls `ctx.breach(...)`, which scores it
(core/detection/scoring.py) and returns the `Breach`. Models that need history ("new", "rare",
"unusual") check `ctx.cold` and return no breach while the network is still learning; the
detector reports them as learning.

A model is known by its `id` (`ics.new_action`): config tables, stored breaches and filters use
it. Its `title` is what people read, and nothing decides anything on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.detection import scoring
from plantwatch.core.detection.features import declared_frame
from plantwatch.core.detection.peaks import LearnedPeaks
from plantwatch.core.detection.records import Breach

NS = 1_000_000_000
EVIDENCE_MAX = 50

PHASES = ("entry", "privilege", "discovery", "lateral movement", "command and control", "impact")


@dataclass(frozen=True)
class Model:
    id: str                    # stable: config key, stored value, filter term ("ics.new_action")
    title: str                 # for display only
    category: str
    severity: str              # low | medium | high | critical
    phase: str                 # one of PHASES
    attack_ids: tuple[str, ...]
    needs_history: bool        # True: silent (learning) until the network baseline is mature
    description: str
    prior_hours: float = 24.0  # smoothing of the baseline rate (core/scoring.rate)
    judges_pairs: bool = False  # judges a (client, server, service) by the pair's own baseline


@dataclass
class Context:
    """The frames hold exactly their declared features (features.py); built by
    core/detection/context.py."""
    S: pl.DataFrame                      # sessions of the run, enriched
    ops: pl.DataFrame                    # ICS operations sent by clients, enriched
    V: pl.DataFrame                      # per-hour volumes of the run, with baseline statistics
    D: pl.DataFrame                      # devices of the run, with baseline flags
    cfg: dict[str, Any]
    hours_b: float                       # hours of baseline
    cold: bool                           # no mature baseline yet
    breaches: list[Breach] = field(default_factory=list)  # filled as models run (in order)
    titles: dict[str, str] = field(default_factory=dict)  # model id -> title, for explanations
    identity_changes: pl.DataFrame | None = None  # plantwatch.core.inventory.identity.CHANGES of the run
    A: pl.DataFrame = field(default_factory=pl.DataFrame)  # ARP requests of the run
    peaks: LearnedPeaks = field(default_factory=LearnedPeaks)  # learned fan-out thresholds

    def __post_init__(self) -> None:
        self.A = declared_frame("A", self.A)
        self.S = declared_frame("S", self.S)
        self.ops = declared_frame("ops", self.ops)
        self.V = declared_frame("V", self.V)
        self.D = declared_frame("D", self.D)

    def mcfg(self, model: Model) -> dict[str, Any]:
        return self.cfg.get(model.id, {})

    def pair_mature(self) -> pl.Expr:
        """A row's (client, server, service) holds enough observations of its own in the baseline
        (`pair_min_observations`), whatever the maturity of the devices or the network."""
        return pl.col("pair_obs_b") >= int(self.cfg["baseline"]["pair_min_observations"])

    def judged(self) -> pl.Expr:
        """The rows a pair-judging history model judges: every row once the network is mature;
        while it learns, the rows whose pair is mature by its own observations."""
        return pl.lit(True) if not self.cold else self.pair_mature()

    def pair_text(self, n_obs: int) -> str:
        """The one maturity a breach judged by its pair states."""
        return (f"the network is still learning, but this pair is mature by its own {n_obs:,} "
                f"observation(s) in the baseline")

    def title_of(self, model_id: str) -> str:
        return self.titles.get(model_id, model_id)

    def breach(self, model: Model, device: str, targets: list[str], first_ts: int, last_ts: int,
               importance: float, explanation: str, sessions: list[int], refs: list[int],
               details: dict[str, Any], immature: bool = False) -> Breach:
        sc = self.cfg["scoring"]
        # a still-learning device weighs less only in history models: a model that fires at cold
        # start must never score lower because the user provided a baseline
        factor = float(sc["immature_factor"]) if immature and model.needs_history else 1.0
        score = scoring.breach_score(importance, model.severity, sc["severity_weight"],
                                     float(sc["importance_scale"]), factor)
        sessions = [int(s) for s in sessions if s is not None][:EVIDENCE_MAX]
        refs = [PacketRef.unpack(r).pack() for r in refs if r is not None and r >= 0][:EVIDENCE_MAX]
        # the title, not the id, keys the breach id: ids stay what stores written before ids had
        key = f"{model.title}|{device}|{first_ts}|{sessions[0] if sessions else 0}"
        bid = _text_id(key)
        devices = [device] + [t for t in dict.fromkeys(targets) if t and t != device]
        return Breach(
            breach_id=bid, model=model.id, category=model.category, severity=model.severity,
            phase=model.phase, attack_ids=list(model.attack_ids), device=device,
            devices=devices[:EVIDENCE_MAX], first_ts=int(first_ts), last_ts=int(last_ts),
            score=score, importance=round(float(importance), 3), explanation=explanation,
            sessions=sessions, refs=refs, details=json.loads(json.dumps(details, default=_jsonable)))


def _jsonable(v: object) -> object:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return str(v)


def _text_id(text: str) -> int:
    """A deterministic 63-bit id of a text."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") & ((1 << 63) - 1)


def text_id(text: str) -> int:
    return _text_id(text)


# --- grouping helpers -------------------------------------------------------------------------

def clusters(df: pl.DataFrame, by: list[str], gap_s: float, ts: str = "first_ts") -> pl.DataFrame:
    """Sort by `by` then time, and number runs of rows whose gaps stay within gap_s ("cl")."""
    if df.height == 0:
        return df.with_columns(pl.lit(0, pl.Int64).alias("cl"))
    d = df.sort([*by, ts])
    t = d[ts].to_numpy()
    new = np.ones(d.height, dtype=bool)
    same = np.ones(d.height - 1, dtype=bool)
    for c in by:
        v = d[c].to_numpy()
        same &= v[1:] == v[:-1]
    new[1:] = ~same | ((t[1:] - t[:-1]) > int(gap_s * NS))
    return d.with_columns(pl.Series("cl", np.cumsum(new) - 1, dtype=pl.Int64))


def max_in_window(ts: np.ndarray, window_s: float) -> int:
    """The largest number of (sorted) times falling in any window of window_s."""
    if ts.size == 0:
        return 0
    lo = np.searchsorted(ts, ts - int(window_s * NS), side="left")
    return int((np.arange(ts.size) - lo + 1).max())


def groups(df: pl.DataFrame, by: list[str], gap_s: float, key: list[str] | None = None,
           min_count: int = 1, window_s: float | None = None, ts: str = "first_ts") -> list[pl.DataFrame]:
    """Clusters of rows per `by` (gap_s apart at most) that hold at least `min_count` distinct
    `key`s within some window of `window_s` (default gap_s). Each group is sorted by time."""
    if df.height == 0:
        return []
    d = clusters(df, by, gap_s, ts)
    if key:
        d = d.unique([*by, "cl", *key], keep="first", maintain_order=True)
    out = []
    counts = d.group_by("cl").agg(pl.len().alias("n")).filter(pl.col("n") >= min_count)
    if counts.height == 0:
        return []
    d = d.filter(pl.col("cl").is_in(counts["cl"].implode()))
    # one sort for every cluster, not one per cluster (a busy service has thousands)
    d = d.sort(["cl", ts, "ref"] if "ref" in d.columns else ["cl", ts], maintain_order=True)
    for g in d.partition_by("cl", maintain_order=True):
        if min_count > 1 and max_in_window(g[ts].to_numpy(), window_s or gap_s) < min_count:
            continue
        out.append(g)
    return out


def evidence(g: pl.DataFrame, ref: str = "ref") -> tuple[list[int], list[int]]:
    sids = list(dict.fromkeys(g["session_id"].to_list()))
    refs = list(dict.fromkeys(r for r in g[ref].to_list() if r is not None))
    return sids[:EVIDENCE_MAX], refs[:EVIDENCE_MAX]


def span(g: pl.DataFrame) -> tuple[int, int]:
    return int(g["first_ts"].min()), int(g["last_ts"].max())


def fmt_list(items: list, n: int = 4) -> str:
    items = [str(i) for i in items]
    if len(items) <= n:
        return ", ".join(items)
    return ", ".join(items[:n]) + f" and {len(items) - n} more"


def dur(a: int, b: int) -> str:
    s = max(0, (b - a) / NS)
    if s < 1:
        return "a second"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def hours_text(h: float) -> str:
    if h < 1:
        return f"{max(1.0, h * 60):.0f} min"
    return f"{h / 24:.1f} days" if h >= 48 else f"{h:.0f} h"


def window_s_of(g: pl.DataFrame, window_s: float) -> float:
    a, b = span(g)
    return max(window_s, (b - a) / NS)


def summarize(g: pl.DataFrame) -> tuple[str, int, int, list[str], list[int]]:
    """A burst of one client's sessions: (device, first ts, last ts, targets in order, ports)."""
    a, b = span(g)
    return (g["c"][0], a, b, g["s"].unique(maintain_order=True).to_list(),
            sorted(set(g["port"].to_list())))
