"""The pipeline thread behind the console: it fills the store and reports how it is going.

A `Pipeline` runs plantwatch.core.pipeline.ingest.Ingest in a thread of its own (never on the UI's event loop) and
calls `on_status` with an immutable `PipelineStatus` after every committed batch; the console
turns that into a message (thread-safe post) and decides on its own timer when to redraw, so a
burst of batches collapses into one refresh. The status is changed by the pipeline thread
(batches) and by the UI thread (pause, speed): every change derives the next snapshot from the
current one and swaps it in under one lock, and readers only ever see whole snapshots. The UI reads the store through its own read-only
connections in worker threads (tui/screens/base.py).

Kinds of pipeline:
- `DemoPipeline`: learns from the bundled learning capture at full speed (one transaction, with
  progress), then replays the incident capture on an accelerated packet clock (plantwatch.core.capture.replay),
  committing per batch so devices, breaches and the incident appear as they happen.
- `FilesPipeline` (`plantwatch open`): learning captures, then the captures to analyse, unpaced.
- `LivePipeline` (`plantwatch live`): the headless sensor of core/pipeline/sensor.py (dumpcap's ring of
  pcapng files, followed and ingested per batch, capture drops counted) run in this process; the
  ring files stay on disk for the drill-down decode while the ring keeps them.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from plantwatch import demo_data
from plantwatch.core.capture.replay import Replay
from plantwatch.core.inventory.zones import Zones
from plantwatch.core.pipeline.ingest import BatchDone, Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.views import queries

DEMO_DIR = demo_data.files()
DEMO_LEARN = demo_data.LEARN
DEMO_INCIDENT = demo_data.INCIDENT
DETECT_EVERY_S = 600.0   # demo/live: detection checkpoints every 10 minutes of packet time


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    source: str = ""
    phase: str = "idle"          # idle | learning | detecting | paused | done | error
    packet_clock: int | None = None
    packets: int = 0
    pps: float = 0.0             # packets per second of wall time, over the last few batches
    drops: int | None = None     # None: the source cannot drop (files)
    speed: float | None = None   # replay speed (demo), None otherwise
    progress: float | None = None  # learning progress 0..1
    message: str = ""
    generation: int = 0          # one more per committed batch


StatusCallback = Callable[[PipelineStatus], None]


class _Rate:
    """Packets per second over a sliding window of wall time (display only)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window = window_s
        self.events: list[tuple[float, int]] = []

    def add(self, n: int) -> float:
        now = time.monotonic()
        self.events.append((now, n))
        self.events = [(t, k) for t, k in self.events if now - t <= self.window]
        span = max(now - self.events[0][0], 0.25)
        return sum(k for _, k in self.events) / span


class Pipeline:
    """Base: a daemon thread, a status, and stop()."""

    source_label = ""

    def __init__(self, store_path: str | Path, zones: Zones | None = None,
                 models: dict | None = None) -> None:
        self.store_path = str(store_path)
        self.zones = zones or Zones.default()
        self.models = models     # detection config (plantwatch.core.detection.models.load_config)
        self._status = PipelineStatus(source=self.source_label)
        self._status_lock = threading.Lock()
        self._on_status: StatusCallback | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._rate = _Rate()

    # --- lifecycle ---
    def start(self, on_status: StatusCallback) -> None:
        self._on_status = on_status
        self._thread = threading.Thread(target=self._main, name="plantwatch-pipeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def status(self) -> PipelineStatus:
        """The current snapshot (immutable; a later change swaps in a new one)."""
        return self._status

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # demo controls; other pipelines ignore them
    def toggle_pause(self) -> bool | None:
        return None

    def faster(self) -> None:
        return None

    def slower(self) -> None:
        return None

    def finish(self) -> None:
        return None

    # --- internals ---
    def _update(self, change: Callable[[PipelineStatus], dict[str, object]]) -> None:
        """Swap in the snapshot `change` derives from the current one, and report it. Under the
        lock, so two threads never lose each other's change and reports keep their order."""
        with self._status_lock:
            self._status = replace(self._status, **change(self._status))
            if self._on_status is not None:
                with contextlib.suppress(Exception):  # the UI may be shutting down
                    self._on_status(self._status)

    def _emit(self, **changes: object) -> None:
        self._update(lambda _st: changes)

    def _next_generation(self, **changes: object) -> None:
        self._update(lambda st: {**changes, "generation": st.generation + 1})

    def _batch_done(self, done: BatchDone, **extra: object) -> None:
        self._update(lambda st: {"packet_clock": done.last_ts, "packets": st.packets + done.packets,
                                 "pps": self._rate.add(done.packets), "generation": st.generation + 1,
                                 **extra})

    def _main(self) -> None:
        try:
            with Store(self.store_path) as store:
                self.run(store)
        except Exception as e:  # noqa: BLE001 - shown in the status bar, never a traceback
            self._emit(phase="error", message=str(e).splitlines()[0] if str(e) else type(e).__name__)

    def run(self, store: Store) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _learn(self, store: Store, paths: Sequence[str | Path]) -> None:
        """Ingest learning captures in one transaction, then mark where learning ended."""
        if not paths:
            return
        self._emit(phase="learning", progress=0.0)

        def progress(done: int, total: int) -> None:
            self._emit(progress=(done / total) if total else None)

        report = Ingest(store, self.zones, mode="learn", models=self.models).run(
            paths, on_progress=progress, on_batch=lambda d: self._batch_done(d))
        ends = [c.last_ts for c in report.captures if c.last_ts is not None]
        if not ends:
            ends = [r[0] for r in store.execute("SELECT MAX(last_ts) FROM captures WHERE site = ?",
                                                (store.site,)).fetchall() if r[0]]
        if ends:
            with store.transaction():
                queries.set_learn_end(store, max(ends))
        self._next_generation(progress=1.0)


class FilesPipeline(Pipeline):
    """`plantwatch open`: learn, then analyse, as fast as the machine goes."""

    def __init__(self, store_path: str | Path, captures: Sequence[str | Path],
                 learn: Sequence[str | Path] = (), zones: Zones | None = None,
                 models: dict | None = None) -> None:
        self.source_label = "files: " + ", ".join(Path(p).name for p in captures)
        super().__init__(store_path, zones, models)
        self.captures = [str(p) for p in captures]
        self.learn = [str(p) for p in learn]

    def run(self, store: Store) -> None:
        self._learn(store, self.learn)
        self._emit(phase="detecting", progress=None)
        Ingest(store, self.zones, models=self.models).run(self.captures, commit="batch",
                                                          on_batch=self._batch_done)
        self._next_generation(phase="done", pps=0.0)


class DemoPipeline(Pipeline):
    """`plantwatch demo`: learn from the bundled learning capture, then replay the incident."""

    def __init__(self, store_path: str | Path, data_dir: str | Path = DEMO_DIR, speed: float = 2000.0,
                 paced: bool = True, zones: Zones | None = None, models: dict | None = None) -> None:
        data = Path(data_dir)
        self.source_label = f"demo: {DEMO_INCIDENT}"
        if zones is None and (data / "zones.toml").exists():
            zones = Zones.load(data / "zones.toml")
        super().__init__(store_path, zones, models)
        self.learn_paths = [data / DEMO_LEARN]
        self.incident_paths = [data / DEMO_INCIDENT]
        self.replay = Replay(speed=speed)
        if not paced:
            self.replay.finish()

    @staticmethod
    def missing(data_dir: str | Path = DEMO_DIR) -> list[str]:
        d = Path(data_dir)
        return [str(d / n) for n in (DEMO_LEARN, DEMO_INCIDENT) if not (d / n).exists()]

    def run(self, store: Store) -> None:
        self._learn(store, self.learn_paths)
        self._emit(phase="detecting", progress=None, speed=self.replay.speed)
        Ingest(store, self.zones, models=self.models).run(
            self.incident_paths, commit="batch", source=self.replay, chunk_packets=16384,
            detect_every_s=DETECT_EVERY_S,
            on_batch=lambda d: self._batch_done(d, speed=self.replay.speed))
        self._next_generation(phase="done", pps=0.0)

    def stop(self) -> None:
        super().stop()
        self.replay.stop()

    def toggle_pause(self) -> bool | None:
        paused = self.replay.toggle_pause()
        self._update(lambda st: {"phase": "paused" if paused else "detecting"}
                     if st.phase in ("detecting", "paused") else {})
        return paused

    def faster(self) -> None:
        self.replay.faster()
        self._emit(speed=self.replay.speed)

    def slower(self) -> None:
        self.replay.slower()
        self._emit(speed=self.replay.speed)

    def finish(self) -> None:
        self.replay.finish()
        self._update(lambda st: {"phase": "detecting"} if st.phase == "paused" else {})


# --------------------------------------------------------------------------- live capture

def check_capture(iface: str) -> str:
    """The dumpcap to use for `iface`, or plantwatch.core.capture.dumpcap.CaptureSetupError saying how to fix it."""
    from plantwatch.core.capture.dumpcap import check_capture as check

    return check(iface)


class LivePipeline(Pipeline):
    """`plantwatch live -i IFACE`: the headless sensor (core/pipeline/sensor.py: dumpcap's ring of pcapng
    files, followed and ingested one transaction per batch) in this process, for the console.
    The ring files stay in `spool` so the packet view can decode what the ring still holds."""

    def __init__(self, store_path: str | Path, iface: str, zones: Zones | None = None,
                 spool: str | Path | None = None, ring_size_mb: float = 20.0, ring_files: int = 50,
                 models: dict | None = None) -> None:
        self.source_label = f"live: {iface}"
        super().__init__(store_path, zones, models)
        self.iface = iface
        self.spool = Path(spool) if spool else Path(tempfile.mkdtemp(prefix="plantwatch-live-"))
        self.ring = (ring_size_mb, ring_files)
        self.sensor = None

    def _main(self) -> None:
        import logging

        from plantwatch.core.capture.dumpcap import Dumpcap
        from plantwatch.core.pipeline.sensor import Sensor

        # the sensor logs to stderr for journald; on a console screen that would garble it
        quiet = logging.getLogger("plantwatch")
        quiet.handlers[:] = [logging.NullHandler()]
        quiet.propagate = False
        capture = Dumpcap(self.iface, self.spool, ring_size_mb=self.ring[0], ring_files=self.ring[1])
        self.sensor = Sensor(self.store_path, self.spool, capture=capture, zones=self.zones,
                             models=self.models, on_batch=self._live_batch)
        if self._stopping.is_set():
            return
        self._emit(phase="detecting", drops=0)
        code = self.sensor.run()
        st = self.sensor.status
        if code != 0 or st.state == "error":
            self._emit(phase="error", message=st.message or "capture stopped")
        else:
            self._next_generation(phase="done", pps=0.0)

    def _live_batch(self, done: BatchDone) -> None:
        st = self.sensor.status if self.sensor is not None else None
        drops = None
        if st is not None and (st.capture_dropped is not None or st.capture_ifdrop is not None):
            drops = (st.capture_dropped or 0) + (st.capture_ifdrop or 0)
        if drops is None:
            self._batch_done(done)
        else:
            self._batch_done(done, drops=drops)

    def stop(self) -> None:
        super().stop()
        if self.sensor is not None:
            self.sensor.stop()
