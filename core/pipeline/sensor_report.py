"""The sensor's reports: dumpcap's counters and drops, the ring disk, the periodic status line
(also saved in the store for the console), and the breaches of each run. A mixin of Sensor."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict

from plantwatch.core.capture.dumpcap import DISK_FULL, CaptureStats, free_bytes
from plantwatch.core.capture.ring import Missed, packets_written
from plantwatch.core.pipeline.sensor_state import STATUS_STATE, save_state
from plantwatch.core.store.database import Store, StoreError
from plantwatch.core.views.textsafe import printable

log = logging.getLogger("plantwatch.sensor")
RING_DISK_LOW = 64 * 1024   # free bytes under which the ring's file system counts as full


class SensorReports:
    """Reporting half of Sensor (uses its capture, follower, status and cfg)."""

    # --- capture and drops ------------------------------------------------------------------------

    def _check_capture(self) -> None:
        if self.capture is None or self.fatal:
            return
        err = self.capture.error()
        if err is not None and not self.stopping.is_set():
            self.fatal = f"dumpcap stopped: {err}"
            self.status.ring_full = self.status.ring_full or err.startswith(DISK_FULL)
            return
        self._check_ring_disk()

    def _check_ring_disk(self) -> None:
        """A full ring disk while dumpcap runs: said once, with the packets lost so far, and in
        every status line after."""
        try:
            free = free_bytes(self.ring_dir)
        except OSError:
            return
        self.status.ring_free_bytes = free
        if free >= RING_DISK_LOW or self.status.ring_full:
            return
        self.status.ring_full = True
        lost = self._ring_lost()
        log.warning("%s: %s has %d kB free; %d packets dumpcap captured have not reached the ring "
                    "(free space there or choose another ring directory)",
                    DISK_FULL, self.ring_dir, free // 1000, lost)

    def _ring_lost(self) -> int:
        """Packets dumpcap counted (captured or received) that are not in its ring files."""
        assert self.capture is not None
        stats = self.capture.stats()
        seen = max(stats.captured, stats.received or 0)
        written = packets_written(self.ring_dir, self.capture.prefix, self.follower.files)
        self.status.ring_lost = max(seen - written, 0)
        return self.status.ring_lost

    def _disk_full_message(self) -> str:
        """After dumpcap stopped on a full ring disk: the whole story in one line."""
        assert self.capture is not None
        stats = self.capture.stats()
        seen = max(stats.captured, stats.received or 0)
        lost = self._ring_lost()
        return (f"dumpcap stopped: {DISK_FULL} ({self.ring_dir}); {lost} of the {seen} packets it "
                f"captured never reached the ring; free space there or choose another ring directory")

    def _stop_capture(self) -> None:
        if self.capture is None or self._capture_stopped:
            return
        self._capture_stopped = True
        stats = self.capture.stop()
        self._capture_stats(stats)
        if stats.received is not None:
            log.info("dumpcap: %d packets received, %d dropped by capture, %d by the interface",
                     stats.received, stats.dropped or 0, stats.ifdrop or 0)

    def _capture_stats(self, stats: CaptureStats) -> None:
        self.status.capture_captured = stats.captured
        if stats.dropped is not None:
            self.status.capture_dropped = stats.dropped
            self.status.capture_ifdrop = stats.ifdrop
        isb = [s for rf in self.follower.files.values() for s in rf.cursor.isb.values()]
        if isb:  # Interface Statistics Blocks written into the ring (by dumpcap or another writer)
            self.status.capture_dropped = max(self.status.capture_dropped or 0,
                                              sum(s.get("ifdrop", 0) + s.get("osdrop", 0) for s in isb))

    def _missed(self, m: Missed) -> None:
        if m.unread_bytes is None:
            log.warning("pipeline drop: ring file %s was created and removed before it was read", m.name)
        else:
            log.warning("pipeline drop: ring file %s was removed by rotation with %d bytes unread "
                        "(%d packets of it were read)", m.name, m.unread_bytes, m.packets_read)

    # --- reports ---------------------------------------------------------------------------------

    def _report(self, store: Store, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < self.cfg.report_s:
            return
        span = max(now - self._last_report, 1e-3) if self._last_report else None
        self._last_report = now
        st = self.status
        if self.capture is not None:
            self._capture_stats(self.capture.stats())
        st.lag_bytes = self.follower.bytes_behind()
        st.lag_packets = (max(st.capture_captured - st.packets, 0)
                          if self.capture is not None and st.capture_captured is not None else None)
        st.missed_files, st.missed_bytes = self.follower.missed, self.follower.missed_bytes
        rate = (st.packets - self._report_packets) / span if span else 0.0
        self._report_packets = st.packets
        counts = {}
        with contextlib.suppress(StoreError):
            for t in ("devices", "breaches", "incidents"):
                counts[t] = store.execute(f"SELECT COUNT(*) FROM {t} WHERE site = ?", (store.site,)).fetchone()[0]
        lag_p = "" if st.lag_packets is None else f" / {st.lag_packets} packets"
        drops = "n/a" if st.capture_dropped is None else str(st.capture_dropped)
        ring = ""
        if st.ring_full:
            ring = f", ring disk FULL ({st.ring_lost if st.ring_lost is not None else '?'} packets lost)"
        if st.outage_since is not None:   # the counts are the buffer file's, not the store's
            wall = time.time()
            oldest = f", oldest {wall - st.buffered_since:.0f} s" if st.buffered_since else ""
            ring += (f"; STORE UNREACHABLE for {wall - st.outage_since:.0f} s: {st.buffered_batches} "
                     f"batch(es), {st.buffered_rows} rows buffered{oldest}; in this batch")
        log.info("status: %d packets (%.0f/s), lag %d bytes%s, capture drops %s, pipeline drops %d "
                 "files (%d bytes)%s; devices %s, breaches %s, incidents %s", st.packets, rate,
                 st.lag_bytes, lag_p, drops, st.missed_files, st.missed_bytes, ring,
                 counts.get("devices", "?"), counts.get("breaches", "?"), counts.get("incidents", "?"))
        if not store.db.in_transaction:
            with contextlib.suppress(StoreError):
                save_state(store, STATUS_STATE, asdict(st))

    def _final_report(self, store: Store) -> None:
        if self.capture is not None:
            self._stop_capture()
        with contextlib.suppress(Exception):
            self._report(store, force=True)

    def _log_run(self, report) -> None:  # noqa: ANN001 - plantwatch.core.pipeline.ingest.IngestReport
        det = report.detection
        if det is None:
            return
        for b in det.breaches[-20:]:
            log.info("breach %.2f %s [%s]: %s", b.score, b.model, printable(b.device, 60),
                     printable(b.explanation, 300))


