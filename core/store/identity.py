"""Writes the merged device identity (core/inventory/identity.py) and its changes to the store's
device_identity and identity_changes tables (schema V7), keyed by the device's address text."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.addr import ip_texts
from plantwatch.core.inventory.identity import IdentityTable
from plantwatch.core.store.database import Store


def _with_device(frame: pl.DataFrame) -> pl.DataFrame:
    dev = pl.Series("device", ip_texts(frame["hi"].to_numpy(), frame["lo"].to_numpy()), dtype=pl.String)
    return frame.with_columns(dev).drop("hi", "lo")


def write_identity(store: Store, table: IdentityTable) -> None:
    attrs = table.attributes()
    if attrs.height:
        store.upsert("device_identity", _with_device(attrs))
    changes = table.changes()
    if changes.height:
        store.upsert("identity_changes", _with_device(changes))
