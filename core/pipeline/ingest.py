"""The offline pipeline: captures in, sessions and devices in the store.

source -> decode -> sessions -> devices -> store. One run is one transaction: a capture that turns
out to be corrupt half-way leaves the store exactly as it was. Captures already in the store (same
content fingerprint) are skipped, so analysing a file twice does not double anything; session ids
are deterministic, so a re-run that does reach the store replaces rows instead of adding them.

Sessions still open at the end of a run are stored as they stand and stay open in the pipeline
state (core/store/state.py); a capture appended later continues them and the inventory.

A run holds the store's writer lease (Store.writer) from the moment it looks at the pipeline
state to its last write: when another process saved state since this Ingest loaded it, the run
loads it again first, so two runs into one store both land, one after the other.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl

from plantwatch.core.capture.batch import CaptureError, RawBatch
from plantwatch.core.capture.continuation import StreamMark
from plantwatch.core.capture.files import iter_files, read_batches, total_input_bytes
from plantwatch.core.capture.spool import spooled
from plantwatch.core.decode import Decoder
from plantwatch.core.detection.detector import Detector, DetectResult
from plantwatch.core.flows.sessions import SessionTracker, session_ops
from plantwatch.core.inventory.devices import DeviceInventory
from plantwatch.core.inventory.identity import IdentityTable
from plantwatch.core.inventory.zones import Zones
from plantwatch.core.pipeline import devices_out
from plantwatch.core.store import captures as stored_captures
from plantwatch.core.store import state as pipeline_state
from plantwatch.core.store.database import Store, fingerprint
from plantwatch.core.store.identity import write_identity
from plantwatch.core.store.writers import StoreSink, load_baseline

# Records per batch offline: large enough that polars' per-operation overhead is amortised
# (measured: 65,536 -> 131,072 is ~20% faster), small enough to keep peak memory far below 1 GB.
OFFLINE_BATCH = 131072


@dataclass
class CaptureInfo:
    path: str
    capture_id: int = 0
    packets: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    skipped: bool = False        # already in the store
    warnings: list[str] = field(default_factory=list)
    note: str = ""               # how it relates to what the store holds (said, not a warning)
    resumes: int | None = None   # the stored capture whose records it repeats first
    skip_records: int = 0        # ... that many of them, read but not counted again
    mark: StreamMark | None = None   # what recognises it later (core/capture/continuation.py)
    source: Path | None = None   # where it is read from when not its path (a pipe, spooled)


@dataclass(frozen=True, slots=True)
class BatchDone:
    """What one committed batch held (per-batch mode's on_batch argument)."""
    packets: int
    first_ts: int
    last_ts: int
    sessions_ended: int


@dataclass
class IngestReport:
    captures: list[CaptureInfo]
    packets: int = 0
    sessions: int = 0
    warnings: list[str] = field(default_factory=list)
    detection: DetectResult | None = None  # breaches, incidents, model states (core/detection/detector.py)


def write_unverified_roles(store: Store, detection: DetectResult, devices: pl.DataFrame) -> None:
    """Rewrite the devices whose trusted role this detection could not verify (a newcomer's, an
    incident actor's) as unverified (`engineering?`)."""
    marked = detection.verified_roles(devices)
    changed = marked.join(devices.select("device", "role"), on=["device", "role"], how="anti")
    if changed.height:
        store.upsert("devices", _for_sql(changed))


def _for_sql(frame: pl.DataFrame) -> pl.DataFrame:
    """Store conventions: unsigned 64-bit as signed, lists as JSON text."""
    exprs = []
    for name, dt in frame.schema.items():
        if dt == pl.UInt64:
            exprs.append(pl.col(name).reinterpret(signed=True))
        elif isinstance(dt, pl.List):
            exprs.append(pl.col(name).map_elements(lambda v: json.dumps(v.to_list()), return_dtype=pl.String))
    return frame.with_columns(exprs) if exprs else frame


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _holding_the_store(method: _Method) -> _Method:
    """Run `method` under the store's writer lease, on the pipeline state as the store holds it."""
    @functools.wraps(method)
    def locked(self: Ingest, *args: Any, **kwargs: Any) -> Any:
        with self.store.writer():
            if pipeline_state.generation(self.store) != self._generation:
                self._load_state()   # another writer saved since this Ingest loaded it
            try:
                return method(self, *args, **kwargs)
            finally:
                self._generation = pipeline_state.generation(self.store)
    return locked  # type: ignore[return-value]


def _source(path: Path, info: CaptureInfo) -> Path:
    return info.source or path


class Ingest:
    """One run over a set of captures into a store."""

    def __init__(self, store: Store, zones: Zones | None = None, mode: str = "detect",
                 models: dict | None = None) -> None:
        """`mode` "learn" only learns the baseline; "detect" detects, then learns what was normal.
        `models` is the detection config (plantwatch.core.detection.models.load_config), defaults when None."""
        self.store = store
        self.zones = zones or Zones.default()
        self.decoder = Decoder()
        self._detect_args = (mode, models)
        self._load_state()

    def _load_state(self) -> None:
        """Open sessions, inventory and baseline as the store holds them now."""
        self.tracker = SessionTracker()
        self.inventory = DeviceInventory(self.zones)
        pipeline_state.load(self.store, "sessions", self.tracker)
        pipeline_state.load(self.store, "devices", self.inventory)
        self.identity = IdentityTable()
        pipeline_state.load(self.store, "identity", self.identity)
        self._generation = pipeline_state.generation(self.store)
        self.detector = self._new_detector()

    @_holding_the_store
    def run(self, paths: Sequence[str | Path], *, chunk_packets: int = OFFLINE_BATCH,
            on_progress: Callable[[int, int], None] | None = None,
            on_warning: Callable[[str], None] | None = None,
            source: Callable[[Iterator[RawBatch]], Iterable[RawBatch]] | None = None,
            commit: str = "run",
            on_batch: Callable[[BatchDone], None] | None = None,
            detect_every_s: float | None = None) -> IngestReport:
        """Ingest `paths`. `commit="run"` (analyze): one transaction for the whole run.
        `commit="batch"` (live console, demo): one transaction per batch, then `on_batch` is
        called, so readers see the store grow; a failure keeps the batches already committed.
        `source` wraps the batch iterator (the demo's paced replay). `detect_every_s` (per-batch
        mode): every that many seconds of packet time, let the detector report what it has found
        so far (Detector.checkpoint, when it has one), so breaches appear while a replay runs."""
        if commit not in ("run", "batch"):
            raise ValueError("commit must be 'run' or 'batch'")
        files = iter_files(paths)
        infos = [CaptureInfo(str(p)) for p in files]
        with spooled(files) as sources:
            for info, src in zip(infos, sources, strict=True):
                info.source = src
            return self._run_files(files, infos, chunk_packets=chunk_packets, on_progress=on_progress,
                                   on_warning=on_warning, source=source, commit=commit,
                                   on_batch=on_batch, detect_every_s=detect_every_s)

    def _run_files(self, files: list[Path], infos: list[CaptureInfo], *, chunk_packets: int,
                   on_progress: Callable[[int, int], None] | None,
                   on_warning: Callable[[str], None] | None,
                   source: Callable[[Iterator[RawBatch]], Iterable[RawBatch]] | None, commit: str,
                   on_batch: Callable[[BatchDone], None] | None,
                   detect_every_s: float | None) -> IngestReport:
        todo = self.select_captures(files, infos)
        report = IngestReport(captures=infos)
        if not todo:
            return report
        total = total_input_bytes([_source(p, i) for p, i, _ in todo])
        if self.detector.result is not None:  # a second run of this Ingest: fresh detector state
            self.detector = self._new_detector()

        def warn(msg: str) -> None:
            report.warnings.append(msg)
            for _, info, _ in todo:
                if msg.startswith(info.path + ":"):
                    info.warnings.append(msg)
            if on_warning:
                on_warning(msg)

        for _, info, _ in todo:   # what was found out before reading
            for msg in info.warnings:
                report.warnings.append(msg)
                if on_warning:
                    on_warning(msg)
        per_batch = commit == "batch"
        checked: int | None = None
        run_tx = nullcontext() if per_batch else self.store.bulk()
        batch_tx = self.store.transaction if per_batch else nullcontext
        with run_tx:
            with batch_tx():
                ids = self.register_captures(todo)
            batches: Iterable[RawBatch] = read_batches(
                [_source(p, i) for p, i, _ in todo], chunk_packets=chunk_packets, on_warning=warn,
                on_progress=(lambda n: on_progress(n, total)) if on_progress else None,
                names=[i.path for _, i, _ in todo], skip=[i.skip_records for _, i, _ in todo],
                on_mark=lambda k, m: setattr(todo[k][1], "mark", m))
            if source is not None:
                batches = source(iter(batches))
            for batch in batches:
                with batch_tx():
                    self.count_batch(batch, [info for _, info, _ in todo])
                    # packet references are (capture id in the store, frame) from here on, so state
                    # carried across runs keeps pointing at the right capture
                    batch = replace(batch, file_id=ids[batch.file_id].astype(np.int32))
                    dec = self.decoder.decode(batch)
                    ended = self.tracker.update(dec.packets, dec.ops)
                    self.inventory.update(dec.packets, dec.ops, ended,
                                          endpoints=self.tracker.last_endpoints)
                    self.detector.update(dec.packets, dec.ops, ended)
                    self.detector.add_identity_changes(self.identity.update(dec.identity))
                    self._write_sessions(ended)
                    report.sessions += ended.height
                    if per_batch:
                        self._write_live_view()
                        if detect_every_s and len(batch):
                            now = int(batch.ts[-1])
                            if checked is None:
                                checked = now
                            elif now - checked >= detect_every_s * 1e9:
                                checked = now
                                self._checkpoint()
                if on_batch is not None and len(batch):
                    on_batch(BatchDone(packets=len(batch), first_ts=int(batch.ts[0]),
                                       last_ts=int(batch.ts[-1]), sessions_ended=ended.height))
            for note in self.decoder.notes():  # caps that bounded memory: said, not silent
                warn(note)
            with batch_tx():
                still_open = self.tracker.open_sessions()
                self.inventory.update(pl.DataFrame(), None, None, open_sessions=still_open)
                self._write_sessions(still_open)
                report.sessions += still_open.height
                devices = self.inventory.devices()
                self.store.upsert("devices", _for_sql(devices_out.rows_to_write(self.store, self.inventory, devices)))
                write_identity(self.store, self.identity)
                report.detection = self.detector.finish(still_open, devices)
                write_unverified_roles(self.store, report.detection, devices)
                self.finish_captures(todo)
                pipeline_state.save(self.store, "sessions", self.tracker)
                pipeline_state.save(self.store, "devices", self.inventory)
                pipeline_state.save(self.store, "identity", self.identity)
                devices_out.mark(self.store, self.inventory)
        report.packets = sum(i.packets for _, i, _ in todo)
        return report

    @_holding_the_store
    def run_zeek(self, paths: Sequence[str | Path], *,
                 on_warning: Callable[[str], None] | None = None) -> IngestReport:
        """Zeek logs (directories or files) instead of captures, into the same inventory,
        detector and store: plantwatch.core.pipeline.zeek.run."""
        from plantwatch.core.pipeline.zeek.run import run_zeek

        return run_zeek(self, paths, on_warning=on_warning)

    def _new_detector(self) -> Detector:
        """The detector of a run: the baseline earlier runs learned, results into the store
        through `self.sink` (which knows the breach and incident ids the run has written)."""
        mode, models = self._detect_args
        self.sink = StoreSink(self.store, models)
        return Detector(load_baseline(self.store), self.sink, self.zones, mode, models)

    # --- hooks: how a run accounts for its captures (the sensor overrides them for ring files) ---

    def select_captures(self, files: list[Path], infos: list[CaptureInfo]) -> list[tuple[Path, CaptureInfo, str]]:
        """The files of this run to read, with their fingerprints. A file already in the store,
        or named twice, is skipped; one that repeats or continues a stored capture
        (core/store/captures.py) is skipped or read past the records already stored."""
        known = {r[0]: r[1] for r in self.store.execute("SELECT fingerprint, capture_id FROM captures WHERE site = ?",
                                                        (self.store.site,))}
        todo: list[tuple[Path, CaptureInfo, str]] = []
        named: dict[str, str] = {}
        for p, info in zip(files, infos, strict=True):
            src = _source(p, info)
            try:
                fp = fingerprint(src)
            except OSError as e:
                raise CaptureError(str(p), e.strerror or str(e)) from None
            if fp in known:
                info.skipped = True
                info.capture_id = known[fp]
            elif fp in named:
                info.skipped = True
                info.note = f"the same capture as {named[fp]}, named earlier in this run; read once"
            else:
                named[fp] = info.path
                self.relate(src, info)
                if not info.skipped:
                    todo.append((p, info, fp))
        within = stored_captures.repeated_within([_source(p, i) for p, i, _ in todo]) if len(todo) > 1 else {}
        for k, j in within.items():
            info = todo[k][1]
            info.skipped = True
            info.note = (f"its records are the first records of {todo[j][1].path}, named in this run too; "
                         "read once, with it")
        return [t for k, t in enumerate(todo) if k not in within]

    def relate(self, src: Path, info: CaptureInfo) -> None:
        """Whether the file repeats or continues a stored capture: said in `info`."""
        rel = stored_captures.relation(self.store, src, info.path)
        if rel.repeats is not None:
            info.skipped = True
            info.capture_id = rel.repeats.capture_id
            info.note = (f"its records are the first records of capture {rel.repeats.capture_id} "
                         f"({rel.repeats.path}), already in the store; not counted again")
        elif rel.continues is not None:
            c = rel.continues
            info.resumes, info.skip_records = c.capture_id, c.records
            info.note = (f"continues capture {c.capture_id} ({c.path}): its first {c.records:,} packets "
                         "are already in the store; only the packets after them are counted")
        if rel.unsure is not None:
            info.warnings.append(
                f"{info.path}: begins like capture {rel.unsure.capture_id} ({rel.unsure.path}), whose file "
                "cannot be read any more to compare; analysed as a new capture (if it repeats that "
                "one, its packets are counted twice)")

    def register_captures(self, todo: list[tuple[Path, CaptureInfo, str]]) -> np.ndarray:
        """Rows in `captures` for the files of this run; their ids, indexed by run-local file id."""
        ids = []
        for p, info, fp in todo:
            cur = self.store.execute(
                "INSERT INTO captures (path, fingerprint, size, packets, status, resumes, first_frame, site, sensor) "
                "VALUES (?, ?, ?, 0, 'partial', ?, ?, ?, ?)",
                # absolute: a console started elsewhere finds it (a pipe keeps the name it was given)
                (info.path if info.source else str(p.resolve()), fp, _source(p, info).stat().st_size,
                 info.resumes, info.skip_records + 1, self.store.site, self.store.sensor))
            info.capture_id = int(cur.lastrowid or 0)
            ids.append(info.capture_id)
        return np.array(ids, dtype=np.int64)

    def count_batch(self, batch: RawBatch, infos: list[CaptureInfo]) -> None:
        """Packets and time span of each capture, batch by batch."""
        fid = batch.file_id
        for i in np.unique(fid):
            sel = fid == i
            info = infos[int(i)]
            info.packets += int(sel.sum())
            ts = batch.ts[sel]
            lo, hi = int(ts.min()), int(ts.max())
            info.first_ts = lo if info.first_ts is None else min(info.first_ts, lo)
            info.last_ts = hi if info.last_ts is None else max(info.last_ts, hi)

    def _checkpoint(self) -> None:
        checkpoint = getattr(self.detector, "checkpoint", None)
        if checkpoint is not None:
            checkpoint(self.tracker.open_sessions(), self.inventory.devices())

    def _write_live_view(self) -> None:
        """Per-batch mode: open sessions and the inventory as they stand, for live readers."""
        still_open = self.tracker.open_sessions()
        self.inventory.update(pl.DataFrame(), None, None, open_sessions=still_open)
        self._write_sessions(still_open)
        self.store.upsert("devices", _for_sql(self.inventory.devices()))
        devices_out.forget(self.store)
        write_identity(self.store, self.identity)

    def _write_sessions(self, sessions: pl.DataFrame) -> None:
        if sessions.height == 0:
            return
        self.store.upsert("sessions", _for_sql(sessions.drop("ops")))
        self.store.upsert("session_ops", _for_sql(session_ops(sessions)))

    def finish_captures(self, todo: list[tuple[Path, CaptureInfo, str]]) -> None:
        """The captures' final counts and status, inside the run's last transaction."""
        for _, info, _ in todo:
            status = "truncated" if any("truncated" in w for w in info.warnings) else "complete"
            self.store.execute(
                "UPDATE captures SET packets=?, first_ts=?, last_ts=?, status=?, warnings=? WHERE capture_id=?",
                (info.packets, info.first_ts, info.last_ts, status, json.dumps(info.warnings), info.capture_id))
            if info.mark is not None:
                stored_captures.record_mark(self.store, info.capture_id, info.mark)
