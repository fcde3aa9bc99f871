"""How a sensor rides out its database server going away (part of core/pipeline/sensor.py's Sensor).

With a PostgreSQL store the sensor keeps going: each run goes into a batch file of the outage
buffer (core/pipeline/buffer.py) with detection and all, from the state the last run ended with;
between runs, and every STORE_RETRY_S while the ring is idle, it tries the server. When the server
answers, the buffer is forwarded (core/pipeline/forward.py) before the next run there, so that
run continues from the state the last buffered run ended with. One log line per change of state:
unreachable, each buffered batch closed, reachable again, forwarded.

Without a buffer to continue from (an SQLite store does not go away; a sensor started while the
server is down has no state to build on; the reserve of capture ids is spent) the ring is the
buffer: the sensor waits, and reads the ring again from the positions the server saved.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from plantwatch.core.pipeline.forward import forward
from plantwatch.core.store.database import Store, StoreUnreachable

if TYPE_CHECKING:
    from plantwatch.core.pipeline.buffer import OutageBuffer
    from plantwatch.core.pipeline.sensor_state import SensorStatus

log = logging.getLogger("plantwatch.sensor")
STORE_RETRY_S = 2.0   # how often a sensor whose database server went away tries it again


class SensorOutage:
    """Mixin: needs `buffer`, `status`, `stopping`, `store_path`, `models` and `_run`."""

    buffer: OutageBuffer | None
    status: SensorStatus
    _last_try = 0.0
    _came_back = False
    _buffering = False     # a run into the buffer is under way (the SIEM waits for the server)
    exit_code = 0          # a buffered run that ended the sensor (stopped, or an error) said it

    def _ride_out(self, problem: str) -> bool:
        """The server went away: buffer runs until it answers (False: stopped meanwhile)."""
        problem = problem.splitlines()[0]
        if self.buffer is None:
            return self._wait_for_store(problem)
        if self.status.outage_since is None:
            self.status.outage_since = time.time()
        self._note_backlog()
        self._came_back = False
        said = False
        while not self.stopping.is_set():   # type: ignore[attr-defined]
            batch = self.buffer.start_batch()
            if batch is None:
                log.warning("store unreachable (%s) and the buffer cannot take runs (no run state seen "
                            "from the store yet, or no capture id left in reserve for a new ring file): "
                            "the ring keeps the packets; retrying every %.0f s", problem, STORE_RETRY_S)
                return self._wait_for_store(problem, said=True)
            if not said:
                log.warning("store unreachable (%s): runs go into the buffer %s until it is back",
                            problem, self.buffer.dir)
                said = True
            self.status.state, self.status.message = "buffering", problem
            with batch, batch.writer(until_stopped=True):
                code = self._run(batch, buffered=True)   # type: ignore[attr-defined]
            self._note_backlog()
            if code is not None:     # stopped (or failed) while buffering
                self.exit_code = code
                return False
            if self._came_back or self._server_back():
                return True
        return False

    def _server_back(self, *, throttled: bool = False) -> bool:
        now = time.monotonic()
        if throttled and now - self._last_try < STORE_RETRY_S:
            return False
        self._last_try = now
        try:
            Store(self.store_path).close()   # type: ignore[attr-defined]
        except StoreUnreachable:
            return False
        log.info("store reachable again: forwarding the buffer")
        self._came_back = True
        return True

    def _wait_for_store(self, problem: str, *, said: bool = False) -> bool:
        """Wait for the server (False: stopped meanwhile). What was not committed is read again
        from the ring when it is back, from the positions saved at the end of the last run; rows
        keyed by deterministic ids are replaced, not doubled. An outage longer than the ring
        holds loses its oldest files, reported as missed."""
        if not said:
            log.warning("store unreachable (%s): the ring keeps the packets; retrying every %.0f s",
                        problem, STORE_RETRY_S)
        self.status.state, self.status.message = "waiting for the store", problem
        while not self.stopping.wait(STORE_RETRY_S):   # type: ignore[attr-defined]
            try:
                Store(self.store_path).close()   # type: ignore[attr-defined]
            except StoreUnreachable:
                continue
            log.info("store reachable again: resuming from the last saved run")
            return True
        return False

    def _note_backlog(self) -> None:
        if self.buffer is None:
            return
        b = self.buffer.backlog()
        st = self.status
        st.buffered_batches, st.buffered_rows, st.buffered_since = b.batches, b.rows, b.oldest

    def _forward_buffer(self, server: Store) -> None:
        """Before the first run into a server that came back: what the buffer holds, in order."""
        self._buffering = False
        if self.buffer is None or not self.buffer.files():
            return
        self._note_backlog()
        st = self.status
        done = forward(server, self.buffer, self.models,   # type: ignore[attr-defined]
                       on_batch=lambda meta, rows: log.info("forwarded buffered batch %d: %d rows",
                                                            int(meta.get("seq", 0)), rows))
        rate = done.rows / done.seconds if done.seconds > 0 else 0.0
        outage = f"; the store was unreachable for {time.time() - st.outage_since:.0f} s" if st.outage_since else ""
        extra = "".join(f", {n} {what}" for n, what in ((done.skipped, "already forwarded (removed)"),
                                                        (done.discarded, "unclosed (read again from the ring)"))
                        if n)
        log.info("forwarded %d buffered batch(es), %d rows in %.1f s (%.0f rows/s)%s%s",
                 done.batches, done.rows, done.seconds, rate, extra, outage)
        st.forwarded_batches += done.batches
        st.forwarded_rows += done.rows
        st.outage_since = None
        self._note_backlog()
        self._forward(server)   # type: ignore[attr-defined]  # what detection found meanwhile, to the SIEM
