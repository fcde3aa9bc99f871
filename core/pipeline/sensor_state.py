"""The sensor's settings, its status, and what it keeps in the store: the ring follower's
positions, the status report, provisional detections, and one captures row per ring file
(through _SensorIngest, the Ingest whose captures are the ring files)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from plantwatch.core.capture.batch import RawBatch
from plantwatch.core.capture.ring import RingFile
from plantwatch.core.inventory.zones import Zones
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store import state as pipeline_state
from plantwatch.core.store.database import Store

if TYPE_CHECKING:
    from plantwatch.core.pipeline.sensor import Sensor

RING_STATE = "ring.follower"      # state row: the follower's positions (JSON)
STATUS_STATE = "sensor.status"    # state row: the last status report (JSON), for the console
# state row: breach and incident ids written by detection checkpoints of the run in progress; a
# run cut short (kill -9, power cut) is redone from its start, so they are removed first
PROVISIONAL_STATE = "sensor.provisional"
# state row: capture ids reserved in a PostgreSQL store's sequence for ring files to come
# (core/pipeline/buffer.py), saved with the run state
RESERVE_STATE = "buffer.capture_ids"
MAX_SLOTS = 4096                  # ring files one run may span


@dataclass
class SensorConfig:
    chunk_packets: int = 65536
    flush_s: float = 1.0          # a batch boundary at least this often (wall time) when idle-ish
    poll_s: float = 0.2           # how often the ring is looked at when nothing is waiting
    run_seconds: float = 60.0     # wall time of one run (state saved at its end)
    run_packets: int = 2_000_000
    detect_wall_s: float = 2.0    # detection checkpoint inside a run after this much wall time
    report_s: float = 30.0        # status log line period (wall time)
    exit_idle_s: float | None = None   # follow-only mode: stop after this long with nothing new


@dataclass
class SensorStatus:
    started: float = 0.0
    packets: int = 0              # ingested by this process
    batches: int = 0
    runs: int = 0
    last_packet_ts: int | None = None
    lag_bytes: int = 0
    lag_packets: int | None = None
    capture_captured: int | None = None
    capture_dropped: int | None = None
    capture_ifdrop: int | None = None
    missed_files: int = 0
    missed_bytes: int = 0
    ring_free_bytes: int | None = None  # free space on the ring's file system (capturing only)
    ring_full: bool = False       # the ring disk filled up: packets were lost before the ring
    ring_lost: int | None = None  # packets dumpcap captured that never reached the ring
    state: str = "starting"       # starting | running | buffering | waiting for the store | stopping | stopped | error
    outage_since: float | None = None   # wall time the store became unreachable (None: reachable)
    buffered_batches: int = 0     # closed runs waiting in the outage buffer (core/pipeline/buffer.py)
    buffered_rows: int = 0
    buffered_since: float | None = None   # wall time the oldest of them was opened
    forwarded_batches: int = 0    # forwarded from the buffer by this process
    forwarded_rows: int = 0
    message: str = ""


class SensorIngest(Ingest):
    """Ingest whose runs read ring files through the follower (the `source` of Ingest.run) and
    whose captures rows are the ring files themselves, one row per file across runs."""

    def __init__(self, sensor: Sensor, store: Store, zones: Zones, models: dict | None,
                 buffered: bool = False) -> None:
        """`buffered`: `store` is a batch file of the outage buffer (core/pipeline/buffer.py)."""
        super().__init__(store, zones, "detect", models)
        self.sensor = sensor
        self.buffered = buffered
        self.slots: list[RingFile] = []
        self.ids = np.zeros(MAX_SLOTS, dtype=np.int64)

    # --- the engine's hooks --------------------------------------------------------------------

    def register_captures(self, todo: list) -> np.ndarray:
        self.slots = []
        self.ids[:] = 0
        return self.ids

    def count_batch(self, batch: RawBatch, infos: list) -> None:  # the follower counts
        return None

    def relate(self, src: Path, info: object) -> None:  # ring files are followed by position
        return None

    def finish_captures(self, todo: list) -> None:
        for rf in self.slots:
            status = "complete" if rf.done else "partial"
            if any("truncated" in w or "corrupt" in w for w in rf.warnings):
                status = "truncated" if rf.done else status
            self.store.execute(
                "UPDATE captures SET packets=?, first_ts=?, last_ts=?, size=?, status=?, warnings=? "
                "WHERE capture_id=?",
                (rf.cursor.packets, rf.first_ts, rf.last_ts, rf.size, status, json.dumps(rf.warnings),
                 rf.capture_id))
        self.sensor.follower.prune()
        save_state(self.store, RING_STATE, self.sensor.follower.state())
        save_state(self.store, PROVISIONAL_STATE, {"breaches": [], "incidents": []})
        save_state(self.store, STATUS_STATE, asdict(self.sensor.status))
        buffer = self.sensor.buffer
        if buffer is not None:    # the capture ids left go with the state (core/pipeline/buffer.py)
            save_state(self.store, RESERVE_STATE, {"ids": list(buffer.reserve)})
            if self.buffered:
                buffer.close_batch(self.store)

    def checkpoint(self) -> None:
        """Detect over what the run has seen so far, open sessions included, and write it (inside
        a transaction)."""
        self.detector.checkpoint(self.tracker.open_sessions(), self.inventory.devices())

    # --- slots ----------------------------------------------------------------------------------

    def slot(self, rf: RingFile) -> int | None:
        for i, s in enumerate(self.slots):
            if s is rf:
                return i
        if len(self.slots) >= MAX_SLOTS:
            return None
        path = self.sensor.follower.dir / rf.name
        if not rf.capture_id:
            # on a server, ids come from the sensor's reserve: the same during an outage
            new_id = self.sensor.buffer.capture_id(self.store) if self.sensor.buffer is not None else None
            if self.buffered and new_id is None:
                return None      # the reserve is spent: the run ends, the ring keeps the rest
            rf.capture_id = ensure_capture(self.store, path, rf, new_id)
        elif self.buffered:      # a file the server (or an earlier batch) knows: its row here too
            ensure_capture(self.store, path, rf, rf.capture_id)
        self.slots.append(rf)
        self.ids[len(self.slots) - 1] = rf.capture_id
        return len(self.slots) - 1


def ensure_capture(store: Store, path: Path, rf: RingFile, capture_id: int | None = None) -> int:
    """The captures row of a ring file (created on first use, with `capture_id` when given;
    found again after a restart)."""
    fp = f"ring:{rf.name}:{rf.ino}"
    row = store.execute("SELECT capture_id FROM captures WHERE fingerprint = ? AND site = ?",
                        (fp, store.site)).fetchone()
    if row:
        return int(row[0])
    if capture_id is not None:
        store.execute("INSERT INTO captures (capture_id, path, fingerprint, size, packets, status, site, sensor) "
                      "VALUES (?, ?, ?, ?, 0, 'partial', ?, ?)", (capture_id, str(path.resolve()), fp, rf.size,
                                                                  store.site, store.sensor))
        return capture_id
    cur = store.execute("INSERT INTO captures (path, fingerprint, size, packets, status, site, sensor) "
                        "VALUES (?, ?, ?, 0, 'partial', ?, ?)", (str(path.resolve()), fp, rf.size,
                                                                  store.site, store.sensor))
    return int(cur.lastrowid or 0)


def withdraw_provisional(store: Store) -> tuple[int, int] | None:
    """Remove the breaches and incidents an interrupted run's checkpoints wrote (inside the
    caller's transaction); how many of each, None when there were none."""
    prov = load_state(store, PROVISIONAL_STATE) or {}
    b_ids, i_ids = prov.get("breaches", []), prov.get("incidents", [])
    if not b_ids and not i_ids:
        return None
    for bid in b_ids:
        store.execute("DELETE FROM breaches WHERE breach_id = ? AND site = ?", (int(bid), store.site))
        store.execute("DELETE FROM breach_sessions WHERE breach_id = ? AND site = ?", (int(bid), store.site))
    for iid in i_ids:
        store.execute("DELETE FROM incidents WHERE incident_id = ? AND site = ?", (int(iid), store.site))
    save_state(store, PROVISIONAL_STATE, {"breaches": [], "incidents": []})
    return len(b_ids), len(i_ids)


def save_state(store: Store, name: str, value: dict) -> None:
    pipeline_state.put(store, name, json.dumps(value).encode())


def load_state(store: Store, name: str) -> dict | None:
    row = store.execute("SELECT value FROM state WHERE site = ? AND sensor = ? AND name = ?",
                        (store.site, store.sensor_name, name)).fetchone()
    if not row:
        return None
    try:
        return json.loads(bytes(row[0]).decode())
    except (ValueError, UnicodeDecodeError):
        return None


