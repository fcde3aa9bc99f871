"""Demo replay: captured batches re-played as if live, on an accelerated packet clock.

`Replay(speed)` wraps a batch iterator (plantwatch.core.capture.files.read_batches) and yields the same records in
small slices, each covering `speed * tick_s` seconds of packet time, sleeping between slices so
that packet time advances `speed` times faster than the wall clock. Only the pacing looks at the
wall clock: where a slice is cut, and everything the pipeline decides, uses packet time, so a
replay stores exactly what an offline analysis of the same files would.

The controls are thread-safe (the console calls them from its UI thread while the pipeline
thread iterates): pause/resume, speed up/down, and `finish()` which stops pacing and lets the
rest through in full batches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from plantwatch.core.capture.batch import RawBatch

NS = 1_000_000_000
MIN_SPEED = 1.0
MAX_SPEED = 1_000_000.0


def slice_batch(b: RawBatch, lo: int, hi: int) -> RawBatch:
    """Records lo..hi of a batch (the byte buffer is shared, not copied)."""
    return RawBatch(data=b.data, offset=b.offset[lo:hi], caplen=b.caplen[lo:hi],
                    wirelen=b.wirelen[lo:hi], ts=b.ts[lo:hi], linktype=b.linktype[lo:hi],
                    file_id=b.file_id[lo:hi], frame=b.frame[lo:hi], paths=b.paths)


class Replay:
    def __init__(self, speed: float = 2000.0, *, tick_s: float = 0.25,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._speed = float(speed)
        self.tick_s = tick_s
        self._sleep = sleep
        self._now = monotonic
        self._lock = threading.Lock()
        self._paused = False
        self._finish = False
        self._stop = False
        self._anchor: tuple[float, int] | None = None   # (wall, packet time) pacing is measured from
        self.packet_clock: int | None = None             # packet time of the last record yielded

    # --- controls (any thread) ---
    @property
    def speed(self) -> float:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def finishing(self) -> bool:
        return self._finish

    def set_speed(self, speed: float) -> None:
        with self._lock:
            self._speed = min(MAX_SPEED, max(MIN_SPEED, float(speed)))
            self._anchor = None

    def faster(self) -> None:
        self.set_speed(self._speed * 2)

    def slower(self) -> None:
        self.set_speed(self._speed / 2)

    def toggle_pause(self) -> bool:
        with self._lock:
            self._paused = not self._paused
            self._anchor = None
            return self._paused

    def finish(self) -> None:
        """Stop pacing: the rest of the capture goes through as fast as it can."""
        with self._lock:
            self._finish = True
            self._paused = False

    def stop(self) -> None:
        """End the replay at the next slice (the iterator returns)."""
        with self._lock:
            self._stop = True
            self._paused = False

    # --- the iterator (pipeline thread) ---
    def __call__(self, batches: Iterable[RawBatch]) -> Iterator[RawBatch]:
        for b in batches:
            if self._stop:
                return
            if self._finish or len(b) == 0:
                self._advance(b)
                yield b
                continue
            ts = b.ts
            i = 0
            while i < len(b):
                if self._stop:
                    return
                if self._finish:
                    rest = slice_batch(b, i, len(b))
                    self._advance(rest)
                    yield rest
                    break
                self._wait_while_paused()
                window = int(self._speed * self.tick_s * NS)
                j = int(np.searchsorted(ts, int(ts[i]) + max(window, 1), side="left"))
                j = max(j, i + 1)
                part = slice_batch(b, i, j)
                self._pace(int(ts[i]))
                self._advance(part)
                yield part
                i = j

    def _advance(self, part: RawBatch) -> None:
        if len(part):
            self.packet_clock = int(part.ts[-1])

    def _wait_while_paused(self) -> None:
        while self._paused and not self._stop and not self._finish:
            self._sleep(0.05)

    def _pace(self, pkt_ts: int) -> None:
        """Sleep until the wall clock catches up with `pkt_ts` on the accelerated clock."""
        while True:
            with self._lock:
                if self._anchor is None:
                    self._anchor = (self._now(), pkt_ts)
                    return
                wall0, pkt0 = self._anchor
                due = wall0 + (pkt_ts - pkt0) / NS / self._speed
            delay = due - self._now()
            if delay <= 0 or self._finish or self._stop:
                return
            # sleep in short steps so pause, speed and finish take effect quickly
            self._sleep(min(delay, 0.1))
            if self._paused:
                self._wait_while_paused()
                with self._lock:
                    self._anchor = None
