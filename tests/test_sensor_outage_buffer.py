"""A sensor writing to PostgreSQL outlives its server (core/pipeline/buffer.py, forward.py,
sensor_outage.py), on a private cluster (tests/pg_cluster.py).

The capture is replayed into the ring one file at a time. Each file is exactly one sensor run
(run_packets = chunk_packets = a file's packets), so run boundaries, and with them detection's,
do not depend on how fast the machine is: the run with an outage is compared row for row with
the run without one."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from plantwatch.core.pipeline.buffer import OutageBuffer, run_state
from plantwatch.core.pipeline.forward import FORWARDED_STATE, forward
from plantwatch.core.pipeline.sensor_state import load_state
from plantwatch.core.store.database import Store
from tests.sensor_support import ZONES_TOML, incident, records, write_ring

WAIT_S = 300.0       # how long the test waits for the sensor to reach a point (not a timing check)
OUTAGE_S = 60.0      # the server is down this long
FILES = 12
_SENSOR = """
import sys
from plantwatch.core.pipeline.sensor import Sensor, SensorConfig, configure_logging
from plantwatch.core.inventory.zones import Zones
configure_logging()
per = int(sys.argv[4])
cfg = SensorConfig(chunk_packets=per, run_packets=per, exit_idle_s=float(sys.argv[5]), poll_s=0.02,
                   report_s=3600, run_seconds=3600, detect_wall_s=0.05)
sensor = Sensor(sys.argv[1], sys.argv[2], zones=Zones.load(sys.argv[3]), config=cfg)
sensor.install_signals()
sys.exit(sensor.run())
"""
TABLES = {   # what must be equal, row for row, in a stable order
    "sessions": "session_id", "session_ops": "session_id, app, code, cls, name, from_client, requests",
    "devices": "device", "breaches": "breach_id", "incidents": "incident_id",
    "breach_sessions": "breach_id, session_id", "device_identity": "device, component, source, attribute",
}


class _Sensor:
    """The sensor in a subprocess; its log lines as they come."""

    def __init__(self, store: str, ring: Path, zones: Path, per: int, exit_idle: float) -> None:
        self.p = subprocess.Popen([sys.executable, "-c", _SENSOR, store, str(ring), str(zones), str(per),
                                   str(exit_idle)], cwd=Path(__file__).resolve().parent.parent,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            self.lines.put(line)

    def wait_line(self, text: str) -> str:
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.05)
            except queue.Empty:
                assert self.p.poll() is None or not self.lines.empty(), f"sensor exited: {self.text()}"
                continue
            self.log.append(line)
            if text in line:
                return line
        raise AssertionError(f"no '{text}' in: {self.text()}")

    def text(self) -> str:
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return "".join(self.log)

    def wait(self) -> int:
        code = self.p.wait(WAIT_S)
        time.sleep(0.1)     # the reader thread drains the pipe
        self.text()
        return code


def _rows(store: str, sql: str, params: tuple = ()) -> list[tuple]:
    with Store(store, readonly=True) as st:
        return st.execute(sql, params).fetchall()


def _table(store: str, table: str) -> list[tuple]:
    return _rows(store, f"SELECT * FROM {table} ORDER BY {TABLES[table]}")


def _forwarded(store: str) -> list[str]:
    with Store(store, readonly=True) as st:
        return (load_state(st, FORWARDED_STATE) or {}).get("ids", [])


def _complete(store: str) -> int:
    return _rows(store, "SELECT COUNT(*) FROM captures WHERE status = 'complete'")[0][0]


def _feed(staged: list[Path], ring: Path) -> None:
    """One ring file appears, whole (as dumpcap's next file would, only already written)."""
    for p in staged:
        shutil.copy(p, ring / (p.name + ".part"))
        os.replace(ring / (p.name + ".part"), ring / p.name)


def _wait_for(sensor: _Sensor, what) -> None:  # noqa: ANN001 - a predicate
    end = time.monotonic() + WAIT_S
    while not what():
        assert sensor.p.poll() is None, f"sensor exited: {sensor.text()}"
        assert time.monotonic() < end, f"the sensor did not get there: {sensor.text()}"
        time.sleep(0.05)


@pytest.fixture
def replay(tmp_path: Path):
    zones = tmp_path / "zones.toml"
    zones.write_text(ZONES_TOML)
    staged = write_ring(tmp_path / "staged", incident(normal=6000), FILES)
    return zones, staged, len(records([staged[0]]))   # packets in a full file


def test_a_minute_without_the_server_arrives_once_even_through_a_kill(pg_cluster, tmp_path: Path, replay) -> None:
    zones, staged, per = replay
    ref_ring = tmp_path / "ref_ring"
    ref_ring.mkdir(mode=0o700)
    _feed(staged, ref_ring)
    ref = pg_cluster.create_database("buffer_ref")
    s = _Sensor(ref, ref_ring, zones, per, exit_idle=1.0)
    assert s.wait() == 0, s.text()
    assert _complete(ref) == FILES and _table(ref, "breaches") and _table(ref, "incidents")

    ring = tmp_path / "ring"
    ring.mkdir(mode=0o700)
    buffer = tmp_path / "ring.buffer"
    store = pg_cluster.create_database("buffer_outage")
    Store(store).close()
    s = _Sensor(store, ring, zones, per, exit_idle=8.0)
    for k in range(3):                                  # the replay, at a file every 0.5 s
        _feed(staged[k:k + 1], ring)
        time.sleep(0.5)
    _wait_for(s, lambda: _complete(store) == 3)
    pg_cluster.stop("immediate")
    down = time.monotonic()
    try:
        for k in range(3, 9):                           # the replay goes on while the server is down
            _feed(staged[k:k + 1], ring)
            time.sleep(OUTAGE_S / 8)
        s.wait_line("store unreachable")
        _wait_for(s, lambda: OutageBuffer(buffer, None, None).backlog().batches == 6)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))
        assert s.p.poll() is None, s.text()             # it buffers, it does not give up
        backlog = OutageBuffer(buffer, None, None).backlog()
        assert backlog.batches == 6 and backlog.rows > 0
    finally:
        pg_cluster.start()
    s.wait_line("store reachable again")
    s.wait_line("forwarded buffered batch 1:")
    os.kill(s.p.pid, signal.SIGKILL)                    # kill -9 while forwarding
    s.wait()
    left = OutageBuffer(buffer, None, None).backlog().batches
    assert 0 < left < 6, s.text()                       # some forwarded, some still buffered
    forwarded = _forwarded(store)

    s = _Sensor(store, ring, zones, per, exit_idle=3.0)  # restarted: forwards the rest, goes on
    _feed(staged[9:], ring)
    assert s.wait() == 0, s.text()
    assert "forwarded" in s.text()
    assert OutageBuffer(buffer, None, None).files() == []  # the buffer ends empty
    assert len(_forwarded(store)) == 6 > len(forwarded)
    for table in TABLES:                                # none lost, none twice
        assert _table(store, table) == _table(ref, table), table
    files = "SELECT capture_id, path, packets, status FROM captures ORDER BY capture_id"
    assert [(i, Path(p).name, n, st) for i, p, n, st in _rows(store, files)] == \
        [(i, Path(p).name, n, st) for i, p, n, st in _rows(ref, files)]


def test_a_sensor_restarted_during_the_outage_continues_and_a_crash_after_a_commit_doubles_nothing(
        pg_cluster, tmp_path: Path, replay, monkeypatch) -> None:
    zones, staged, per = replay
    ref_ring = tmp_path / "ref_ring"
    ref_ring.mkdir(mode=0o700)
    _feed(staged, ref_ring)
    ref = pg_cluster.create_database("buffer_ref2")
    assert _Sensor(ref, ref_ring, zones, per, exit_idle=1.0).wait() == 0

    ring = tmp_path / "ring"
    ring.mkdir(mode=0o700)
    buf = OutageBuffer(tmp_path / "ring.buffer", None, None)
    store = pg_cluster.create_database("buffer_restart")
    Store(store).close()
    s = _Sensor(store, ring, zones, per, exit_idle=8.0)
    _feed(staged[:3], ring)
    _wait_for(s, lambda: _complete(store) == 3)
    pg_cluster.stop("immediate")
    try:
        _feed(staged[3:6], ring)
        _wait_for(s, lambda: buf.backlog().batches == 3)
        os.kill(s.p.pid, signal.SIGKILL)                # kill -9 while buffering
        s.wait()
        s = _Sensor(store, ring, zones, per, exit_idle=8.0)   # the server is still down
        _feed(staged[6:8], ring)
        _wait_for(s, lambda: buf.backlog().batches == 5)   # it went on from the last closed batch
        s.p.send_signal(signal.SIGTERM)
        assert s.wait() == 0, s.text()                  # a clean stop keeps the buffer
        assert "runs go into the buffer" in s.text()
        assert "STORE UNREACHABLE for" in s.text() and "3 batch(es)" in s.text()   # its status line
    finally:
        pg_cluster.start()

    import plantwatch.core.pipeline.forward as fwd

    def crash(path: Path) -> None:
        raise KeyboardInterrupt("power cut between the commit and the removal")

    monkeypatch.setattr(fwd, "remove", crash)
    with Store(store) as server, pytest.raises(KeyboardInterrupt):
        forward(server, buf)
    monkeypatch.undo()
    assert len(_forwarded(store)) == 1 and buf.backlog().batches == 5
    with Store(store) as server:
        done = forward(server, buf)
        # should the server go away again now, the next buffered run starts from what it holds
        assert sorted(buf.base or []) == sorted(run_state(server))
    assert (done.batches, done.skipped) == (4, 1)     # the committed one is not forwarded again
    assert buf.files() == []

    s = _Sensor(store, ring, zones, per, exit_idle=3.0)
    _feed(staged[8:], ring)
    assert s.wait() == 0, s.text()
    for table in TABLES:
        assert _table(store, table) == _table(ref, table), table
    files = "SELECT capture_id, path, packets, status FROM captures ORDER BY capture_id"
    assert [(i, Path(p).name, n, st) for i, p, n, st in _rows(store, files)] == \
        [(i, Path(p).name, n, st) for i, p, n, st in _rows(ref, files)]


def test_a_sensor_started_while_the_server_is_down_waits_with_the_ring_as_its_buffer(
        pg_cluster, tmp_path: Path, replay) -> None:
    zones, staged, per = replay
    ref_ring = tmp_path / "ref_ring"
    ref_ring.mkdir(mode=0o700)
    _feed(staged[:4], ref_ring)
    ref = pg_cluster.create_database("buffer_ref3")
    assert _Sensor(ref, ref_ring, zones, per, exit_idle=1.0).wait() == 0

    ring = tmp_path / "ring"
    ring.mkdir(mode=0o700)
    store = pg_cluster.create_database("buffer_cold")
    Store(store).close()
    pg_cluster.stop("immediate")
    try:
        _feed(staged[:2], ring)
        s = _Sensor(store, ring, zones, per, exit_idle=3.0)
        s.wait_line("the buffer cannot take runs")     # no state to build on: nothing is made up
        assert OutageBuffer(tmp_path / "ring.buffer", None, None).files() == []
    finally:
        pg_cluster.start()
    s.wait_line("store reachable again: resuming")
    _feed(staged[2:4], ring)
    assert s.wait() == 0, s.text()
    for table in TABLES:
        assert _table(store, table) == _table(ref, table), table
