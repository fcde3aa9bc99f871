"""The Detector the engine drives: learn the baseline, run the models, group incidents, score.

Per batch (`update`) it only folds the ended sessions into aggregates (core/baseline.Aggregates)
and keeps the few sessions a model could care about (failed, ICS, external, RDP, TLS oddities,
big transfers, or an edge the baseline does not know), narrowed to the columns the models read:
vectorised group_bys and one hash membership test, no per-packet or per-session Python. At the end
of the run (`finish`) the kept sessions are joined with the baseline once (core/detection/context.py),
every model runs over them, breaches are grouped into incidents, the device threat scores are
computed, everything is handed to the sink (the pipeline gives a store writer,
core/store/writers.py, inside its transaction), and the run is learned into the baseline, leaving
out the devices that breached. Decisions depend on packet time and the data only, so a
run gives the same breaches whatever the batch size.

Modes: "learn" (aggregate everything into the baseline, no detection) and "detect" (detect, then
learn what was normal). A store with no mature baseline is a cold start: models that need history
stay silent and are reported as learning; the others (scans, reprogramming, stops) still fire.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from plantwatch.core.decode.addr import classify as addr_classify
from plantwatch.core.decode.addr import is_group, text_to_ip
from plantwatch.core.decode.ics import ICS_APPS, ICS_PORTS
from plantwatch.core.decode.schema import CLS_ACTION
from plantwatch.core.detection import incidents as incidents_mod
from plantwatch.core.detection import scoring
from plantwatch.core.detection.baseline import HOUR, Aggregates, Baseline, key_hash
from plantwatch.core.detection.context import KEEP, NEW_DEVICE, ContextBuilder
from plantwatch.core.detection.contracts import DetectionSink
from plantwatch.core.detection.models import MODELS, MODULES, load_config
from plantwatch.core.detection.peaks import FanOut, rare_servers, zone_kinds
from plantwatch.core.detection.records import Breach, Incident
from plantwatch.core.flows.sessions import FAILED_STATES, session_ops
from plantwatch.core.inventory.roles import mark_unverified
from plantwatch.core.inventory.zones import Zones

MODES = ("learn", "detect")
U = pl.UInt64()


@dataclass
class DetectResult:
    mode: str
    cold: bool
    baseline_hours: float
    breaches: list[Breach] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)   # model id -> active | learning
    threat: list[tuple[str, float]] = field(default_factory=list)  # devices by peak threat score
    # devices whose trusted role is unverified, with why: new to the baseline, or in an incident
    unverified: dict[str, str] = field(default_factory=dict)

    def verified_roles(self, devices: pl.DataFrame) -> pl.DataFrame:
        """The inventory's devices with the roles this detection could not verify marked so."""
        return mark_unverified(devices, self.unverified)


class Detector:
    """Learns and detects over one run. `baseline` is what earlier runs learned (the pipeline
    loads it); `sink` receives the results (breaches, incidents, scores, the learned baseline)."""

    def __init__(self, baseline: Baseline, sink: DetectionSink, zones: Zones | None = None,
                 mode: str = "detect", config: dict[str, Any] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.sink = sink
        self.zones = zones or Zones.default()
        self.mode = mode
        self._judged = ""   # the maturity statement the last detection judged with
        self.cfg = config or load_config()
        self.baseline = baseline
        self.agg = Aggregates()
        self._kept: list[pl.DataFrame] = []
        self._ops: list[pl.DataFrame] = []
        self._identity: list[pl.DataFrame] = []  # identity changes of the run (inventory.identity.CHANGES)
        self._arp: list[pl.DataFrame] = []   # ARP requests (detect mode), for sweeps
        self.fanout = FanOut(zone_kinds(self.zones))   # learned fan-out peaks (any mode)
        e = self.baseline.edges
        self._known = np.sort(key_hash(e["c_hi"], e["c_lo"], e["s_hi"], e["s_lo"], e["proto"], e["port"])) \
            if e.height else np.zeros(0, dtype=np.int64)
        # sessions big enough to be a volume breach's evidence on a known edge (new edges are kept
        # anyway); not under 25 kB, so a low volume floor does not keep every office session
        self._big = max(int(self.cfg["net.data_volume"]["min_bytes"]), 100_000) // 4
        self._last_checkpoint = 0
        self.result: DetectResult | None = None

    # --- per batch ------------------------------------------------------------------------------

    def update(self, packets: pl.DataFrame | None, ops: pl.DataFrame | None, ended: pl.DataFrame,
               open_sessions: pl.DataFrame | None = None, inventory: object | None = None) -> None:
        """Feed one batch: the sessions that ended in it (packets/ops/open sessions are accepted
        for the interface's sake; models work on sessions and their operations)."""
        if packets is not None and "arp_op" in packets.columns:
            self._keep_arp(packets)
        if ended is None or ended.height == 0:
            return
        sops = session_ops(ended)
        self.agg.add(ended, sops)
        self.fanout.add_sessions(ended, sops)
        if self.mode == "detect":
            self._keep(ended, sops)

    def add_identity_changes(self, changes: pl.DataFrame) -> None:
        """Identity changes the inventory saw in a batch (plantwatch.core.inventory.identity)."""
        if changes.height and self.mode == "detect":
            self._identity.append(changes)
    def _keep_arp(self, p: pl.DataFrame) -> None:
        """ARP requests asking for another address (not gratuitous, not probes from 0.0.0.0),
        once per (sender, target) per batch."""
        req = p.filter((pl.col("arp_op") == 1) & (pl.col("arp_spa") > 0) & (pl.col("arp_spa") != pl.col("arp_tpa")))
        if req.height == 0:
            return
        self.fanout.add_arp(req)
        if self.mode == "detect":
            self._arp.append(req.select("ts", "arp_spa", "arp_tpa", "file_id", "frame").unique(
                ["arp_spa", "arp_tpa"], keep="first", maintain_order=True))

    def _keep(self, s: pl.DataFrame, sops: pl.DataFrame) -> None:
        n = s.height
        ch, cl = s["client_hi"].to_numpy(), s["client_lo"].to_numpy()
        sh, sl = s["server_hi"].to_numpy(), s["server_lo"].to_numpy()
        port = s["server_port"].fill_null(0).to_numpy()
        h = key_hash(ch, cl, sh, sl, s["proto"].to_numpy(), port)
        if self._known.size:
            j = np.minimum(np.searchsorted(self._known, h), self._known.size - 1)
            new = self._known[j] != h
        else:
            new = np.ones(n, dtype=bool)
        glob = (addr_classify(sh, sl) == 0) | (addr_classify(ch, cl) == 0)
        flags = s.select(
            (pl.col("state").is_in(list(FAILED_STATES)) | pl.col("server_port").is_in(list(ICS_PORTS))
             | pl.col("app").is_in(list(ICS_APPS)) | (pl.col("n_ops") > 0) | pl.col("rdp_cookie").is_not_null()
             | pl.col("tls_no_sni").fill_null(False) | pl.col("cert_self_signed").fill_null(False)
             | (pl.col("payload_c2s") >= self._big) | (pl.col("payload_s2c") >= self._big)).alias("f")
        )["f"].to_numpy()
        keep = flags | new | glob
        if not keep.any():
            return
        k = s.filter(pl.Series(keep)).select(KEEP)
        self._kept.append(k)
        if sops.height:
            # what clients sent, and the ACTION requests a server pushed (a PLC reporting STOP)
            sent = pl.col("from_client") | (pl.col("requests") & (pl.col("cls") == CLS_ACTION))
            self._ops.append(sops.filter(sent & pl.col("session_id").is_in(k["session_id"].implode())))

    # --- end of run -------------------------------------------------------------------------------

    def finish(self, open_sessions: pl.DataFrame | None, devices: pl.DataFrame | None) -> DetectResult:
        """Detect over the run, hand breaches/incidents/scores to the sink, learn, hand the
        baseline to the sink. Call inside the engine's transaction when the sink is a store."""
        if open_sessions is not None and open_sessions.height:
            self.update(None, None, open_sessions)
        res = self._detect(devices)
        exclude = pl.DataFrame(schema={"hi": U, "lo": U})
        actors = sorted({b.device for b in res.breaches})
        if actors:
            pairs = [text_to_ip(a) for a in actors]
            exclude = pl.DataFrame({"hi": [p[0] for p in pairs], "lo": [p[1] for p in pairs]},
                                   schema={"hi": U, "lo": U})
        self.baseline.merge(self.agg, exclude, learned=self.mode == "learn")
        rare = rare_servers(self.baseline.edges, int(self.cfg["baseline"]["rare_max_devices"]))
        self.baseline.add_peaks(self.fanout.peaks(self.cfg, exclude, rare))
        self._write_baseline(res.models)
        self.result = res
        return res

    def checkpoint(self, open_sessions: pl.DataFrame | None, devices: pl.DataFrame | None,
                   every_s: float = 0.0) -> DetectResult | None:
        """Live runs (one transaction per batch): detect over what the run has seen so far and
        hand it to the sink, at most once per `every_s` of packet time; learns nothing. Breach and
        incident ids are deterministic, so each checkpoint replaces the previous one's rows."""
        has_open = open_sessions is not None and open_sessions.height > 0
        # on a quiet network packet time stands still and sessions end late: open ones count too
        if self.mode != "detect" or not (self._kept or has_open):
            return None
        lasts = [int(k["last_ts"].max()) for k in self._kept[-4:]]
        if has_open:
            lasts.append(int(open_sessions["last_ts"].max()))
        now = max(lasts)
        if now - self._last_checkpoint < int(every_s * 1e9):
            return None
        self._last_checkpoint = now
        saved = (list(self._kept), list(self._ops))
        if has_open:
            self._keep(open_sessions, session_ops(open_sessions))
        try:
            return self._detect(devices)
        finally:
            self._kept, self._ops = saved

    def _detect(self, devices: pl.DataFrame | None) -> DetectResult:
        bcfg = self.cfg["baseline"]
        cold = not self.baseline.mature(float(bcfg["network_min_hours"]), int(bcfg["network_min_observations"]))
        res = DetectResult(self.mode, cold, self.baseline.hours())
        # what the detection judged with, stated once for the report (the baseline grows after)
        self._judged = self.baseline.maturity_text(float(bcfg["network_min_hours"]),
                                                   int(bcfg["network_min_observations"]))
        # while the network learns, a history model that judges pairs by their own baseline is
        # active for the mature pairs only ("pairs"); the others wait ("learning")
        res.models = {m.id: ("active" if not (cold and m.needs_history) else "pairs" if m.judges_pairs else "learning")
                      for m in MODELS.values()}
        if self.mode != "detect":
            return res
        titles = {m.id: m.title for m in MODELS.values()}
        ctx = ContextBuilder(self.baseline, self.zones, self.cfg, self.agg, self._kept, self._ops,
                             titles, self._arp).build(devices, cold)
        if self._identity:
            ctx.identity_changes = pl.concat(self._identity)
        for mod in MODULES:
            ctx.breaches.extend(mod.run(ctx))
        # ordered as before ids: by time, then title (the report and the live checkpoints agree)
        breaches = sorted(ctx.breaches, key=lambda b: (b.first_ts, titles[b.model], b.breach_id))
        new_devs = set(ctx.D.filter(~pl.col("known") & ~pl.col("external"))["device"].to_list()) \
            if not cold else set()
        names = {r["device"]: r["name"] for r in ctx.D.select("device", "name").iter_rows(named=True) if r["name"]}
        res.incidents = incidents_mod.build(breaches, self.cfg, new_devs, names)
        res.unverified = dict.fromkeys(sorted(new_devs), NEW_DEVICE)
        # the sources of an incident's breaches (its targets only suffered it)
        sources = {b.device for b in breaches}
        for inc in res.incidents:
            for d in inc.devices:
                if d in sources:
                    res.unverified.setdefault(d, f"acted in incident {inc.incident_id}")
        res.breaches = breaches
        scores, res.threat = self._scores(breaches)
        self.sink.write_detection(breaches, res.incidents, scores)
        return res

    # --- scores and the baseline's tables -----------------------------------------------------------

    def _scores(self, breaches: list[Breach]) -> tuple[list[tuple[str, int, float, int]], list[tuple[str, float]]]:
        """Device threat scores per hour, and the devices by their peak score."""
        sc = self.cfg["scoring"]
        share = float(sc["secondary_factor"])
        events = []
        for b in breaches:
            events.append((b.device, b.first_ts, b.last_ts, b.score, True))
            events += [(d, b.first_ts, b.last_ts, b.score * share, False) for d in b.devices[1:]]
        series = scoring.threat_over_time(events, float(sc["score_decay_hours"]))
        rows = [(dev, ts, s, n) for dev, ser in series.items() for ts, (s, n) in ser.items()]
        peak = {dev: max((s for s, _ in ser.values()), default=0.0) for dev, ser in series.items()}
        return rows, sorted(peak.items(), key=lambda kv: (-kv[1], kv[0]))

    def _write_baseline(self, models: dict[str, str]) -> None:
        b = self.cfg["baseline"]
        t = self.baseline.device_table(float(b["device_min_hours"]), int(b["device_min_sessions"]),
                                       float(b["network_min_hours"]), int(b["device_min_observations"]),
                                       int(b["network_min_observations"]))
        meta = self.baseline.meta(float(b["network_min_hours"]), int(b["network_min_observations"]))
        if self.mode == "detect":
            meta["models"] = json.dumps(models)
            meta["judged_with"] = self._judged
        self.sink.write_baseline(self.baseline, t, meta)


__all__ = ["Detector", "DetectResult", "MODES", "HOUR", "is_group"]
