"""Pipeline state kept in the store between runs: open sessions and the inventory's tables.

A tracker, inventory or baseline says what its memory is and which version of that layout it is
(plantwatch.core.flows.stateful: to_state/from_state). It is written to the store's `state`
table as rows `<name>.version`, `<name>.scalars` (JSON) and one `<name>.<attribute>` per frame
(Arrow IPC bytes; no pickle: a store is data, never code) and put back before the next run, so a
capture appended later continues the same sessions and the same inventory. A state the code
cannot resume from is refused with one line, never half-loaded.

Every save counts one more in the state's `generation`: a writer that loaded the state earlier
sees from the number whether someone else saved since, and loads it again (under the writer
lease, core/store/lease.py) before building on it.
"""

from __future__ import annotations

import io
import json

import polars as pl

from plantwatch.core.flows.stateful import ComponentState, StateError, Stateful
from plantwatch.core.store.database import Store, StoreError

GENERATION = "pipeline.generation"
# each site's named sensor keeps its own state (migration V8); a writer without a name: sensor ''
_MINE = "site = ? AND sensor = ?"


def scope(store: Store) -> tuple[str, str]:
    """Whose pipeline state `store` reads and writes: (site, sensor name)."""
    return store.site, store.sensor_name


def generation(store: Store) -> int:
    """How many times pipeline state was saved into `store` (0: never)."""
    row = store.execute(f"SELECT value FROM state WHERE {_MINE} AND name = ?", (*scope(store), GENERATION)).fetchone()
    try:
        return int(bytes(row[0]).decode()) if row else 0
    except ValueError:
        return 0


def put(store: Store, name: str, value: bytes) -> None:
    """One state row of the writer's scope (site, sensor), replacing what was there."""
    store.execute("INSERT INTO state (site, sensor, name, value) VALUES (?, ?, ?, ?) ON CONFLICT "
                  "(site, sensor, name) DO UPDATE SET value = excluded.value", (*scope(store), name, value))


def _bump(store: Store) -> None:
    put(store, GENERATION, str(generation(store) + 1).encode())


def save(store: Store, name: str, obj: Stateful) -> None:
    """`obj`'s state (Stateful.to_state) under `name`, replacing what was there."""
    st = obj.to_state()
    mine = scope(store)
    store.execute(f"DELETE FROM state WHERE {_MINE} AND name LIKE ?", (*mine, f"{name}.%"))
    insert = "INSERT INTO state (site, sensor, name, value) VALUES (?, ?, ?, ?)"
    store.execute(insert, (*mine, f"{name}.version", json.dumps(st.version).encode()))
    store.execute(insert, (*mine, f"{name}.scalars", json.dumps(st.scalars).encode()))
    for k, df in st.frames.items():   # one frame's bytes in memory at a time
        buf = io.BytesIO()
        # zstd: open sessions are mostly small integers and nulls (a tenth of the bytes to write
        # and commit; read_ipc reads compressed and uncompressed states alike)
        df.write_ipc(buf, compression="zstd")
        store.execute(insert, (*mine, f"{name}.{k}", buf.getvalue()))
        del buf
    _bump(store)


def load(store: Store, name: str, obj: Stateful) -> bool:
    """Restore `obj` from the store; False when the store holds no state for `name`. A state
    `obj` cannot resume from (newer, unknown layout) raises StoreError, one line."""
    mine = scope(store)
    keys = [k for (k,) in store.execute(f"SELECT name FROM state WHERE {_MINE} AND name LIKE ?",
                                        (*mine, f"{name}.%"))]
    if not keys:
        return False

    def value(key: str, default: bytes) -> bytes:
        row = store.execute(f"SELECT value FROM state WHERE {_MINE} AND name = ?", (*mine, key)).fetchone()
        return bytes(row[0]) if row else default

    try:
        # no version row: saved before state had versions (version 0); its ".none" row listed
        # the attributes that were None, which is what a missing frame says now
        version = int(json.loads(value(f"{name}.version", b"0")))
        scalars = {k: int(v) for k, v in json.loads(value(f"{name}.scalars", b"{}")).items()}
        special = {f"{name}.version", f"{name}.scalars", f"{name}.none"}
        # one frame's bytes in memory at a time (a big inventory's state is tens of MB a frame)
        frames = {key[len(name) + 1:]: pl.read_ipc(io.BytesIO(value(key, b""))) for key in keys if key not in special}
        obj.from_state(ComponentState(version, frames, scalars))
    except StateError as e:
        raise StoreError(f"{store.path}: cannot resume its pipeline state '{name}': {e}") from None
    except (ValueError, TypeError, OSError, pl.exceptions.PolarsError) as e:
        raise StoreError(f"{store.path}: pipeline state '{name}' is damaged ({type(e).__name__})") from None
    return True
