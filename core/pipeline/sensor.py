"""The headless sensor: dumpcap's ring -> follower -> Ingest per batch -> store, for weeks.

    plantwatch sensor -i eth1 --store /var/lib/plantwatch/plant.sqlite

Units of work:
- a *batch* is what the follower has read when either `chunk_packets` records are waiting or
  `flush_s` of wall time has passed since the first of them was read (so a quiet network still
  reaches the store within a second or two); each batch is one transaction, and a console
  attached read-only sees it as soon as it commits;
- a *run* (one plantwatch.core.pipeline.ingest.Ingest.run) spans batches for up to `run_seconds` of wall time or
  `run_packets` packets; at its end, in one transaction, the detector learns and writes, and the
  pipeline state (open sessions, inventory, baseline) is saved together with every ring file's
  read position. A crash or kill -9 therefore resumes from the end of the last run: the packets
  read since are read again and, session and breach ids being deterministic, replace the rows
  they had written instead of adding to them.

SIGTERM/SIGINT: the current batch is finished, the run is closed (state and positions saved),
dumpcap is stopped. Plain log lines go to stderr (journald keeps them under systemd): start,
warnings, missed ring files, and every `report_s` the rate, the pipeline lag (bytes and, from
dumpcap's running count, packets not yet ingested), capture drops, pipeline drops and a full ring
disk. Settings, status and what is kept in the store: sensor_state.py; the reports: sensor_report.py.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from plantwatch.core.capture.batch import CaptureError, RawBatch
from plantwatch.core.capture.dumpcap import CaptureSetupError, Dumpcap, secure_dir
from plantwatch.core.capture.ring import RingFile, RingFollower, _concat
from plantwatch.core.inventory.zones import Zones
from plantwatch.core.pipeline.ingest import BatchDone
from plantwatch.core.pipeline.sensor_report import SensorReports
from plantwatch.core.pipeline.sensor_state import (
    PROVISIONAL_STATE,
    RING_STATE,
    SensorConfig,
    SensorIngest,
    SensorStatus,
    load_state,
    save_state,
)
from plantwatch.core.store.database import Store, StoreError, StoreUnreachable
from plantwatch.core.store.engine.pg_store import is_dsn

if TYPE_CHECKING:
    from plantwatch.core.pipeline.siem import Forwarder

log = logging.getLogger("plantwatch.sensor")
STORE_RETRY_S = 2.0   # how often a sensor whose database server went away tries it again

__all__ = ["RING_STATE", "Sensor", "SensorConfig", "SensorStatus", "configure_logging", "run_sensor"]


def configure_logging(level: int = logging.INFO) -> None:
    """Plain lines on stderr: time, level, message (journald adds its own metadata)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("plantwatch")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for name in ("plantwatch.core.capture.ring", "plantwatch.core.capture.files"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.propagate = False


class Sensor(SensorReports):
    """The service loop. `capture` None: follow an existing ring directory (tests, benchmark,
    a ring written by something else); `writer_active` then tells whether its writer still runs."""

    def __init__(self, store_path: str | Path, ring_dir: str | Path, *, capture: Dumpcap | None = None,
                 zones: Zones | None = None, models: dict | None = None,
                 config: SensorConfig | None = None,
                 writer_active: Callable[[], bool] | None = None,
                 on_batch: Callable[[BatchDone], None] | None = None,
                 siem: Forwarder | None = None) -> None:
        self.store_path = store_path if is_dsn(store_path) else Path(store_path)
        self.ring_dir = Path(ring_dir)
        self.capture = capture
        self.zones = zones or Zones.default()
        self.models = models
        self.cfg = config or SensorConfig()
        self.writer_active = writer_active or (lambda: False)
        self.on_batch_cb = on_batch
        self.siem = siem                 # breaches and incidents to a SIEM, as they are committed
        self.status = SensorStatus()
        self.stopping = threading.Event()
        self.fatal: str | None = None
        self.follower: RingFollower = RingFollower(self.ring_dir)
        self._last_report = 0.0
        self._last_new = time.monotonic()
        self._report_packets = 0
        self._capture_stopped = False
        self._source_end = 0.0

    # --- control --------------------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        """Finish the current batch, close the run, stop (safe from a signal handler)."""
        self.stopping.set()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def _writer_active(self) -> bool:
        if self.capture is not None:
            return self.capture.alive()
        return bool(self.writer_active())

    # --- main -----------------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; 0 on a clean stop, 1 on an error (logged as one line)."""
        self.status.started = time.time()
        lock = -1
        try:
            ring = secure_dir(self.ring_dir)
            lock = os.open(ring, os.O_RDONLY)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CaptureSetupError(f"{ring}: another plantwatch sensor uses this ring directory") from None
            if isinstance(self.store_path, Path):
                parent = self.store_path.resolve().parent
                if not parent.exists():
                    secure_dir(parent)
            while True:
                # the sensor keeps the writer lease while it runs: its pipeline state lives in memory
                # between runs, and another writer refuses at once instead of waiting for it to stop
                try:
                    with Store(self.store_path) as store, store.writer(until_stopped=True):
                        return self._run(store)
                except StoreUnreachable as e:
                    if not self._wait_for_store(str(e)):
                        return 0
        except (CaptureSetupError, StoreError, CaptureError, OSError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.status.state, self.status.message = "error", msg
            log.error("sensor stopped: %s", msg)
            return 1
        except Exception as e:  # noqa: BLE001 - a bug: logged with its traceback, the unit restarts us
            self.status.state, self.status.message = "error", f"internal error: {type(e).__name__}: {e}"
            log.exception("sensor stopped: internal error")
            return 1
        finally:
            if self.capture is not None:
                self._stop_capture()
            if lock >= 0:
                os.close(lock)

    def _wait_for_store(self, problem: str) -> bool:
        """A database server store went away: wait for it (False: stopped meanwhile). What was
        not committed is read again from the ring when it is back, from the positions saved at
        the end of the last run; rows keyed by deterministic ids are replaced, not doubled. The
        ring is the buffer meanwhile: an outage longer than the ring holds loses its oldest files,
        reported as missed."""
        log.warning("store unreachable (%s): the ring keeps the packets; retrying every %.0f s",
                    problem.splitlines()[0], STORE_RETRY_S)
        self.status.state, self.status.message = "waiting for the store", problem.splitlines()[0]
        while not self.stopping.wait(STORE_RETRY_S):
            try:
                Store(self.store_path).close()
            except StoreUnreachable:
                continue
            log.info("store reachable again: resuming from the last saved run")
            return True
        return False

    def _run(self, store: Store) -> int:
        self.follower = RingFollower(self.ring_dir, load_state(store, RING_STATE),
                                     on_warning=lambda m: log.warning("%s", m), on_missed=self._missed)
        self._drop_provisional(store)
        if self.siem is not None:
            self.siem.prime(store)
        ingest = SensorIngest(self, store, self.zones, self.models)
        if self.capture is not None and self.capture.proc is None:   # not again after a store outage
            self.capture.start()
            log.info("capturing on %s into %s (ring of %d files of %d kB)", self.capture.iface,
                     self.ring_dir, self.capture.files, self.capture.size_kb)
        else:
            log.info("following ring %s", self.ring_dir)
        log.info("store %s", self.store_path)
        self.status.state = "running"
        while not self.stopping.is_set():
            self.follower.scan()
            self._check_capture()
            if self.fatal:
                break
            pending = self.follower.pending()
            if pending and self._has_data(pending):
                path = self.ring_dir / pending[0].name
                try:
                    report = ingest.run([path], commit="batch", source=lambda _it: self._source(ingest),
                                        on_batch=self._on_batch,
                                        on_warning=lambda m: log.warning("%s", m))
                except CaptureError:  # the run's first file went away under us (rotation)
                    if path.exists():
                        raise
                    continue
                self.status.runs += 1
                closing = time.monotonic() - self._source_end if self._source_end else 0.0
                log.info("run %d closed: state saved in %.1f s (%d packets ingested so far)",
                         self.status.runs, closing, self.status.packets)
                if report.captures and report.captures[0].skipped:
                    log.warning("%s: already in the store (analysed before?); not read again", path)
                    pending[0].done = True
                self._log_run(report)
                self._forward(store)
            else:
                self._report(store)
                if self.siem is not None:
                    self.siem.sender.flush()     # retries what the SIEM did not take, after its backoff
                if self._idle_exit():
                    break
                self.stopping.wait(self.cfg.poll_s)
        self.status.state = "stopping"
        if self.fatal:
            if self.status.ring_full and self.capture is not None:
                self._stop_capture()  # its final counts first: the message says what was lost
                self.fatal = self._disk_full_message()
            self.status.state, self.status.message = "error", self.fatal
            log.error("sensor stopped: %s", self.fatal)
            self._final_report(store)
            return 1
        self.status.state = "stopped"
        self._final_report(store)
        log.info("sensor stopped cleanly")
        return 0

    def _drop_provisional(self, store: Store) -> None:
        prov = load_state(store, PROVISIONAL_STATE) or {}
        b_ids, i_ids = prov.get("breaches", []), prov.get("incidents", [])
        if not b_ids and not i_ids:
            return
        with store.transaction():
            for bid in b_ids:
                store.execute("DELETE FROM breaches WHERE breach_id = ? AND site = ?", (int(bid), store.site))
                store.execute("DELETE FROM breach_sessions WHERE breach_id = ? AND site = ?", (int(bid), store.site))
            for iid in i_ids:
                store.execute("DELETE FROM incidents WHERE incident_id = ? AND site = ?", (int(iid), store.site))
            save_state(store, PROVISIONAL_STATE, {"breaches": [], "incidents": []})
        log.info("an interrupted run is redone: %d provisional breach(es) withdrawn until it is", len(b_ids))

    def _has_data(self, pending: list[RingFile]) -> bool:
        writer = self._writer_active()
        for rf in pending:
            if rf.size <= rf.cursor.offset and self.follower.complete(rf, writer):
                rf.done = True  # finished and read to its last byte: nothing to run for
        return any(rf.size > rf.cursor.offset for rf in pending if not rf.done)

    def _idle_exit(self) -> bool:
        if self.cfg.exit_idle_s is None or self.capture is not None:
            return False
        if self.follower.pending() or self._writer_active():
            self._last_new = time.monotonic()
            return False
        return time.monotonic() - self._last_new >= self.cfg.exit_idle_s

    # --- one run's batches ---------------------------------------------------------------------

    def _source(self, ingest: SensorIngest) -> Iterator[RawBatch]:
        """Batches for one run, following the ring; returns when the run should end."""
        cfg = self.cfg
        t0 = time.monotonic()
        total = 0
        pend: list[RawBatch] = []
        npend = 0
        since = 0.0
        last_scan = 0.0
        last_check = time.monotonic()
        check_every = cfg.detect_wall_s
        unchecked = 0
        while True:
            now = time.monotonic()
            if unchecked and now - last_check >= check_every:
                # breaches reach the console within seconds even when packet time stands still;
                # a checkpoint looks at the whole run so far, so under load they are spaced out to
                # keep their cost at a fifth of the time at most
                with ingest.store.transaction():
                    ingest.checkpoint()
                    b_ids, i_ids = ingest.sink.written
                    save_state(ingest.store, PROVISIONAL_STATE,
                               {"breaches": sorted(b_ids), "incidents": sorted(i_ids)})
                self._forward(ingest.store)
                last_check, unchecked = time.monotonic(), 0
                check_every = max(cfg.detect_wall_s, 5 * (last_check - now))
            end = (self.stopping.is_set() or self.fatal is not None or now - t0 >= cfg.run_seconds
                   or total + npend >= cfg.run_packets)
            if end:
                break
            if now - last_scan >= cfg.poll_s:
                self.follower.scan()
                self._check_capture()
                self._report(ingest.store)
                last_scan = now
            got = False
            writer = self._writer_active()
            for rf in self.follower.pending():
                slot = ingest.slot(rf)
                if slot is None:
                    end = True
                    break
                b = self.follower.read(rf, writer, file_id=slot)
                if b is not None and len(b):
                    if not npend:
                        since = time.monotonic()
                    pend.append(b)
                    npend += len(b)
                    got = True
                if not rf.done or npend >= cfg.chunk_packets:
                    break
            if got:
                self._last_new = time.monotonic()
            if npend and (npend >= cfg.chunk_packets or time.monotonic() - since >= cfg.flush_s or end):
                batch = _concat(pend)
                pend, npend = [], 0
                if batch is not None:
                    total += len(batch)
                    unchecked += len(batch)
                    yield batch
                continue
            if end:
                break
            if not got:
                if self._idle_exit() or not self.follower.pending() and not self._writer_active():
                    break
                wait = cfg.poll_s if not npend else min(cfg.poll_s, max(0.0, cfg.flush_s - (time.monotonic() - since)))
                self.stopping.wait(wait)
        if npend:
            batch = _concat(pend)
            if batch is not None:
                yield batch
        self._source_end = time.monotonic()

    def _forward(self, store: Store) -> None:
        if self.siem is not None:
            nb, ni = self.siem.forward(store)
            snd = self.siem.sender
            if nb or ni:
                log.info("syslog %s: %d breach(es) and %d incident(s) to send, %d waiting for the target",
                         snd.target, nb, ni, snd.pending)

    def _on_batch(self, done: BatchDone) -> None:
        self.status.packets += done.packets
        self.status.batches += 1
        self.status.last_packet_ts = done.last_ts
        if self.on_batch_cb is not None:
            self.on_batch_cb(done)

def run_sensor(store_path: str | Path, ring_dir: str | Path, *, iface: str | None,
               ring_size_mb: float = 100.0, ring_files: int = 10, zones: Zones | None = None,
               config: SensorConfig | None = None, capture_filter: str | None = None,
               siem: Forwarder | None = None) -> int:
    """The CLI's entry point: logging, signals, the loop; returns the exit status."""
    configure_logging()
    capture = None
    if iface is not None:
        capture = Dumpcap(iface, ring_dir, ring_size_mb=ring_size_mb, ring_files=ring_files,
                          capture_filter=capture_filter)
    sensor = Sensor(store_path, ring_dir, capture=capture, zones=zones, config=config, siem=siem)
    sensor.install_signals()
    return sensor.run()


