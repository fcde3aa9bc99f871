"""The devices table at the end of a run: only the rows that can have changed.

A run into a store of 200,000 devices used to rewrite every row. When the table is known to hold
exactly what the loaded inventory state derives (the mark below names the zones it was written
with and the pipeline-state generation saved with it), only the rows of the devices the run fed
are written (plantwatch.core.inventory.changes); any other write of the table (a live run's
per-batch view, Zeek) forgets the mark, and the next run writes every row again.
"""

from __future__ import annotations

import hashlib

import polars as pl

from plantwatch.core.inventory.devices import DeviceInventory
from plantwatch.core.inventory.zones import Zones
from plantwatch.core.store import state as pipeline_state
from plantwatch.core.store.database import Store

MARK = "devices-table.written"   # a state row outside every component's "<name>." prefix


def _zones_digest(zones: Zones) -> str:
    return hashlib.sha256(repr(zones.zones).encode()).hexdigest()[:16]


def _current(store: Store, zones: Zones) -> str:
    return f"{_zones_digest(zones)}@{pipeline_state.generation(store)}"


def rows_to_write(store: Store, inventory: DeviceInventory, devices: pl.DataFrame) -> pl.DataFrame:
    """`devices` (inventory.devices()), or only the rows that can differ from the stored table."""
    row = store.execute("SELECT value FROM state WHERE site = ? AND sensor = ? AND name = ?",
                        (*pipeline_state.scope(store), MARK)).fetchone()
    if row is None or bytes(row[0]).decode() != _current(store, inventory.zones):
        return devices
    changed = inventory.changed_rows(devices)
    # a role detection marked unverified (ingest.write_unverified_roles) is not the inventory's:
    # such rows are written again, so a role verified since then loses its mark as in a full write
    marked = [d for (d,) in store.execute("SELECT device FROM devices WHERE role LIKE '%?' AND site = ?",
                                          (store.site,))]
    if marked:
        extra = devices.filter(pl.col("device").is_in(marked) & ~pl.col("device").is_in(changed["device"].to_list()))
        changed = pl.concat([changed, extra], how="vertical_relaxed") if extra.height else changed
    return changed


def mark(store: Store, inventory: DeviceInventory) -> None:
    """The table now holds the inventory's devices in full; call after the state is saved."""
    inventory.mark_written()
    # the marker is the writer's own, like the state it counts (site, sensor: migration V8)
    pipeline_state.put(store, MARK, _current(store, inventory.zones).encode())


def forget(store: Store) -> None:
    """The site's table was written some other way: every writer's next run there writes every row."""
    store.execute("DELETE FROM state WHERE name = ? AND site = ?", (MARK, store.site))


__all__ = ["rows_to_write", "mark", "forget", "MARK"]
