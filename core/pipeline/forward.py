"""Forwarding the outage buffer (core/pipeline/buffer.py) into the server, exactly once.

Batch files go in the order their runs were made. Each goes in ONE server transaction that
1. withdraws the breaches the server's interrupted run had written provisionally (the buffered
   runs redid that run from its start, as a restarted sensor would);
2. upserts every row the file holds, by each table's key (ids are deterministic: a row the
   interrupted run had already committed is replaced by the same row);
3. replaces the sensor's run state (open sessions, inventory, identity, baseline, ring positions)
   with the state the batch's run ended with;
4. applies the analyst's triage in force to what arrived, as detection's own writes do;
5. records the batch's id under the sensor's scope (`sensor.forwarded`).
Only then is the file removed. A crash anywhere leaves either the transaction rolled back (the
file is forwarded again) or the id recorded (the file is removed unread): never lost, never twice.
A file whose run never closed is removed unread: its packets are read again from the ring.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantwatch.core.detection.models import load_config
from plantwatch.core.pipeline.buffer import (
    BATCH_STATE,
    STATE_COMPONENTS,
    STATE_NAMES,
    TABLES,
    OutageBuffer,
    remove,
    run_state,
)
from plantwatch.core.pipeline.sensor_state import load_state, save_state, withdraw_provisional
from plantwatch.core.store import state as pipeline_state
from plantwatch.core.store.database import Store
from plantwatch.core.store.triage_apply import apply_triage, save_regroup_config

log = logging.getLogger("plantwatch.sensor")
FORWARDED_STATE = "sensor.forwarded"   # in the server: ids of the last batches forwarded
KEEP_IDS = 64                          # ... how many are kept (only the last can come back)


@dataclass
class Forwarded:
    batches: int = 0
    rows: int = 0
    seconds: float = 0.0
    skipped: int = 0        # already in the server (a crash came between its commit and removal)
    discarded: int = 0      # runs that never closed: read again from the ring


def forward(server: Store, buffer: OutageBuffer, config: dict[str, Any] | None = None,
            on_batch: Any = None) -> Forwarded:
    """Every batch file of `buffer` into `server`, oldest first (call holding the writer lease)."""
    done = Forwarded()
    t0 = time.monotonic()
    for path in buffer.files():
        meta = buffer.meta(path)
        if not meta or not meta.get("closed"):
            remove(path)
            done.discarded += 1
            continue
        ids = list((load_state(server, FORWARDED_STATE) or {}).get("ids", []))
        with buffer.open(path, readonly=True) as buf:
            state = run_state(buf)
        if meta["id"] in ids:
            buffer.base = state     # the server's run state now (should it go away again)
            remove(path)
            done.skipped += 1
            continue
        rows = forward_batch(server, buffer, path, meta["id"], ids, config)
        buffer.base = state
        remove(path)
        done.batches += 1
        done.rows += rows
        if on_batch is not None:
            on_batch(meta, rows)
    done.seconds = time.monotonic() - t0
    return done


def forward_batch(server: Store, buffer: OutageBuffer, path: Path, batch_id: str, ids: list[str],
                  config: dict[str, Any] | None) -> int:
    """One batch file in one server transaction; the number of rows it held."""
    rows = 0
    with buffer.open(path, readonly=True) as buf, server.transaction():
        withdraw_provisional(server)
        for table in TABLES:
            frame = buf.frame(f"SELECT * FROM {table}")
            rows += frame.height
            server.upsert(table, frame)
        _replace_run_state(server, run_state(buf))
        save_regroup_config(server, config or load_config())
        apply_triage(server)
        save_state(server, FORWARDED_STATE, {"ids": [*ids, batch_id][-KEEP_IDS:]})
    return rows


def _replace_run_state(server: Store, rows: list[tuple[str, bytes]]) -> None:
    scope = pipeline_state.scope(server)
    for c in STATE_COMPONENTS:   # a component's frames are replaced as a whole (state.save does so)
        if any(n.startswith(c + ".") for n, _ in rows):
            server.execute("DELETE FROM state WHERE site = ? AND sensor = ? AND name LIKE ?", (*scope, f"{c}.%"))
    for n in STATE_NAMES:
        server.execute("DELETE FROM state WHERE site = ? AND sensor = ? AND name = ?", (*scope, n))
    for name, value in rows:
        if name != BATCH_STATE:
            pipeline_state.put(server, name, value)
