"""Is this file a plantwatch store? Decided by reading only, before anything is written to it.

A store carries `PRAGMA application_id` APPLICATION_ID (set by migration V5). A store written by
an older plantwatch (application id 0) is recognised by its schema version (1..len(MIGRATIONS))
and the tables V1 created. A missing or 0-byte file is a new store. Anything else is another
program's file and must stay byte-identical: it is only ever opened read-only here. (A new store
is made under the writer lease, so an empty SQLite file seen while someone holds it may be one
being made: NotYetAStore lets the caller wait and look again.)
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

APPLICATION_ID = 0x506C5774          # "PlWt"
_SQLITE_MAGIC = b"SQLite format 3\x00"
V1_TABLES = frozenset({"captures", "sessions", "session_ops", "devices", "state"})


class ForeignFile(Exception):
    """str() is why the file is not a plantwatch store (the caller names the file)."""


class NotYetAStore(ForeignFile):
    """An SQLite database with nothing in it (no schema version, no table): a store another
    plantwatch is creating this very moment, or somebody else's empty database. The caller
    looks again holding the writer lease (core/store/lease.py), under which stores are made."""


def check_store_file(path: str | Path, known_versions: int) -> bool:
    """True for a new store (no file, or an empty one); False for an existing plantwatch store;
    raises ForeignFile for anything else, having written nothing."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        return True
    if size == 0:
        return True
    with open(p, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise ForeignFile("not an SQLite database")
    app_id = int.from_bytes(header[68:72], "big")
    if app_id == APPLICATION_ID:
        return False
    if app_id != 0:
        raise ForeignFile(f"SQLite application id {app_id:#x}")
    # an older plantwatch store (no application id yet): its version and V1's tables, read-only
    try:
        db = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except sqlite3.DatabaseError as e:
        raise ForeignFile(f"cannot be read: {e}") from None
    if version == 0 and not tables:
        raise NotYetAStore("an empty SQLite database")
    if not 1 <= version <= known_versions:
        raise ForeignFile(f"an SQLite database with schema version {version} and tables "
                          f"{', '.join(sorted(tables)[:5]) or 'none'}")
    missing = V1_TABLES - tables
    if missing:
        raise ForeignFile(f"an SQLite database without the tables {', '.join(sorted(missing))}")
    return False


def tighten_mode(path: str | Path) -> None:
    """A store holds the plant's traffic: readable by its owner only, and so are SQLite's files
    beside it. Files of another user are left as they are (chmod would fail; their owner decides)."""
    for p in (str(path), f"{path}-wal", f"{path}-shm"):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(p, 0o600)
