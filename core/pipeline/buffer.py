"""The sensor's outage buffer: where a sensor writing to a PostgreSQL store keeps its runs while
the server cannot be reached.

The buffer is a directory (`--buffer`, default `<ring dir>.buffer` beside the ring) of plantwatch
SQLite stores, one per buffered *batch*: one sensor run (core/pipeline/sensor.py: many packet
batches, closed by one transaction that saves the pipeline state and the ring positions). The
run is the unit because it is the unit the pipeline state moves by: a file holds exactly what
one run wrote (sessions, operations, devices, breaches, ...; the same schema and migrations,
the sensor's site and name) together with the state that run ended with. A file whose run did
not close (the sensor was killed) is thrown away; its packets are read again from the ring, from
the positions the previous file (or the server) saved, as after any interrupted run.

A buffered run starts from the state the previous one ended with: the last closed file, or for
the first, the state the server held at the end of the sensor's last run there (kept in memory
by `remember`, since the server is gone when it is needed). Capture ids must be the server's:
rows refer to ring files by them, and other sensors write the same table. So the sensor reserves
a few ids from the server's sequence while it can (`remember`) and every new ring file takes the
next one, outage or not; the reserve is part of the run state (saved with it, carried from batch
file to batch file, forwarded back), so a run redone after a crash gives its files the same ids.
A sensor restarted during an outage
continues from its last closed file; with none, it has no state to build on and waits for the
server, the ring holding the packets meanwhile.

Forwarding into the server: core/pipeline/forward.py.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from plantwatch.core.pipeline import devices_out
from plantwatch.core.pipeline.sensor_state import (
    PROVISIONAL_STATE,
    RESERVE_STATE,
    RING_STATE,
    STATUS_STATE,
    load_state,
    save_state,
)
from plantwatch.core.store import state as pipeline_state
from plantwatch.core.store.database import Store, StoreError
from plantwatch.core.store.migrations import MIGRATIONS

BATCH_STATE = "buffer.batch"          # in a buffer file: {"id", "seq", "closed", "created", "rows"}
RESERVE = 32                          # capture ids kept reserved (a new ring file each takes one)
# the pipeline state a sensor run keeps, by component prefix (core/store/state.py) and by name
STATE_COMPONENTS = ("sessions", "devices", "identity", "baseline")
STATE_NAMES = (pipeline_state.GENERATION, RING_STATE, PROVISIONAL_STATE, STATUS_STATE, devices_out.MARK,
               RESERVE_STATE)
# the tables a sensor run writes (core/pipeline/ingest.py, core/store/writers.py)
TABLES = ("captures", "sessions", "session_ops", "devices", "device_identity", "identity_changes",
          "breaches", "breach_sessions", "breach_detected", "incidents", "incidents_detected",
          "device_scores", "device_scores_detected", "baseline_devices", "baseline_meta")


def is_run_state(name: str) -> bool:
    """A state row the sensor's runs own (carried from run to run, forwarded to the server)."""
    return name in STATE_NAMES or any(name.startswith(c + ".") for c in STATE_COMPONENTS)


def run_state(store: Store) -> list[tuple[str, bytes]]:
    """The sensor's run state rows in `store`, under its (site, sensor) scope."""
    rows = store.execute("SELECT name, value FROM state WHERE site = ? AND sensor = ?",
                         pipeline_state.scope(store)).fetchall()
    return [(str(n), bytes(v)) for n, v in rows if is_run_state(str(n))]


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits in the buffer: closed batches, their rows, when the oldest was opened (wall time)."""
    batches: int = 0
    rows: int = 0
    oldest: float | None = None


class OutageBuffer:
    def __init__(self, directory: Path, site: str | None, sensor: str | None) -> None:
        self.dir = directory
        self.site, self.sensor = site, sensor
        self.base: list[tuple[str, bytes]] | None = None   # the server's run state, last seen
        self.reserve: list[int] = []                       # capture ids reserved in the server

    # --- while the server answers ---------------------------------------------------------------

    def remember(self, server: Store) -> None:
        """Before the first run into the server and after each: a full reserve of capture ids,
        and the run state (the first buffered run starts from it)."""
        state = run_state(server)
        self.reserve = _reserve_of(state)
        if len(self.reserve) < RESERVE // 2:
            self.reserve += reserve_capture_ids(server, RESERVE - len(self.reserve))
            save_state(server, RESERVE_STATE, {"ids": self.reserve})
            state = [(n, v) for n, v in state if n != RESERVE_STATE]
            state.append((RESERVE_STATE, json.dumps({"ids": self.reserve}).encode()))
        self.base = state

    def capture_id(self, store: Store) -> int | None:
        """A capture id for a ring file seen first now (None: the reserve is spent during an
        outage). Refilled from the server when it is the store."""
        if not self.reserve and store.engine == "postgresql":
            self.reserve += reserve_capture_ids(store, RESERVE)
        return self.reserve.pop(0) if self.reserve else None

    # --- files ----------------------------------------------------------------------------------

    def open(self, path: Path, *, readonly: bool = False) -> Store:
        return Store(path, site=self.site, sensor=self.sensor, readonly=readonly)

    def files(self) -> list[Path]:
        """The buffer's batch files, oldest first."""
        if not self.dir.is_dir():
            return []
        return sorted(self.dir.glob("batch-*.sqlite"), key=lambda p: int(p.stem.split("-")[1]))

    def start_batch(self) -> Store | None:
        """A new batch file holding the state the last batch (or the server) ended with; None
        when there is none to continue from, or no capture id left in reserve."""
        closed = [(p, meta) for p in self.files() if (meta := self.meta(p)) and meta.get("closed")]
        for p in self.files():
            if not any(p == q for q, _ in closed):
                remove(p)          # its run did not close: read again from the ring
        if closed:
            with self.open(closed[-1][0], readonly=True) as last:
                base = run_state(last)
        elif self.base is not None:
            base = self.base
        else:
            return None
        reserve = _reserve_of(base)
        if not reserve:
            return None
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        seq = int(closed[-1][0].stem.split("-")[1]) + 1 if closed else 1
        store = self.open(self.dir / f"batch-{seq:08d}.sqlite")
        self.reserve = reserve
        with store.transaction():
            for name, value in base:
                if name != devices_out.MARK:   # the file's devices table is empty, not the inventory
                    pipeline_state.put(store, name, value)
            save_state(store, BATCH_STATE, {"id": uuid.uuid4().hex, "seq": seq, "closed": False,
                                            "created": time.time(), "rows": 0})
        return store

    def close_batch(self, store: Store) -> int:
        """Mark the run in `store` closed (inside its last transaction): it is forwarded as it
        stands. Its rows are counted for the backlog."""
        rows = sum(int(store.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in TABLES)
        meta = load_state(store, BATCH_STATE) or {}
        save_state(store, BATCH_STATE, {**meta, "closed": True, "rows": rows})
        return rows

    def meta(self, path: Path) -> dict | None:
        """A batch file's BATCH_STATE (None: its making was cut short, before its schema or its
        first transaction committed). A file that cannot be read raises StoreError: it is not
        thrown away unseen."""
        with self.open(path, readonly=True) as st:
            if st.version < len(MIGRATIONS):
                return None
            return load_state(st, BATCH_STATE)

    def backlog(self) -> Backlog:
        metas = []
        for p in self.files():
            with contextlib.suppress(StoreError):   # being made right now, or damaged: not counted
                if (m := self.meta(p)) and m.get("closed"):
                    metas.append(m)
        if not metas:
            return Backlog()
        return Backlog(len(metas), sum(int(m.get("rows", 0)) for m in metas),
                       min(float(m.get("created", 0.0)) for m in metas))


def _reserve_of(state: list[tuple[str, bytes]]) -> list[int]:
    for name, value in state:
        if name == RESERVE_STATE:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                return [int(i) for i in json.loads(value.decode()).get("ids", [])]
    return []


def reserve_capture_ids(server: Store, n: int) -> list[int]:
    """`n` ids taken from the server's captures sequence: nobody else is given them."""
    rows = server.execute("SELECT nextval(pg_get_serial_sequence('captures', 'capture_id')) "
                          "FROM generate_series(1, ?)", (n,)).fetchall()
    return [int(r[0]) for r in rows]


def remove(path: Path) -> None:
    """A batch file and what SQLite and the writer lease keep beside it."""
    for p in path.parent.glob(path.name + "*"):
        p.unlink(missing_ok=True)
