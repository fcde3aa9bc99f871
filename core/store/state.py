"""Pipeline state kept in the store between runs: open sessions and the inventory's tables.

A tracker or inventory keeps its memory in polars frames and a few integers (attributes whose
names start with "_"). Those are written to the store's `state` table as Arrow IPC bytes (no
pickle: a store is data, never code) and put back before the next run, so a capture appended
later continues the same sessions and the same inventory.
"""

from __future__ import annotations

import io
import json

import polars as pl

from plantwatch.core.store.database import Store


def _frames_and_scalars(obj: object) -> tuple[dict[str, pl.DataFrame], dict[str, int]]:
    frames: dict[str, pl.DataFrame] = {}
    scalars: dict[str, int] = {}
    for k, v in vars(obj).items():
        if not k.startswith("_"):
            continue
        if isinstance(v, pl.DataFrame):
            frames[k] = v
        elif isinstance(v, int) and not isinstance(v, bool):
            scalars[k] = v
    return frames, scalars


def save(store: Store, name: str, obj: object) -> None:
    frames, scalars = _frames_and_scalars(obj)
    rows = [(f"{name}.scalars", json.dumps(scalars).encode())]
    nulls = [k for k, v in vars(obj).items() if k.startswith("_") and v is None]
    rows.append((f"{name}.none", json.dumps(nulls).encode()))
    for k, df in frames.items():
        buf = io.BytesIO()
        df.write_ipc(buf)
        rows.append((f"{name}.{k}", buf.getvalue()))
    store.execute("DELETE FROM state WHERE name LIKE ?", (f"{name}.%",))
    for key, value in rows:
        store.execute("INSERT INTO state (name, value) VALUES (?, ?)", (key, value))


def load(store: Store, name: str, obj: object) -> bool:
    """Restore `obj` from the store; False when the store holds no state for `name`."""
    rows = dict(store.execute("SELECT name, value FROM state WHERE name LIKE ?", (f"{name}.%",)).fetchall())
    if not rows:
        return False
    attrs = vars(obj)
    for k, v in json.loads(rows.pop(f"{name}.scalars", b"{}")).items():
        if k in attrs:
            setattr(obj, k, int(v))
    for k in json.loads(rows.pop(f"{name}.none", b"[]")):
        if k in attrs:
            setattr(obj, k, None)
    for key, blob in rows.items():
        attr = key[len(name) + 1:]
        if attr in attrs or attr.startswith("_"):
            setattr(obj, attr, pl.read_ipc(io.BytesIO(blob)))
    return True
