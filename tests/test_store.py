"""The store: schema versions, conventions, and runs that append to it."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.capture.files import read_batches
from plantwatch.core.flows.sessions import SESSION_OPS, SESSIONS
from plantwatch.core.inventory.devices import DEVICES
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store, StoreError
from plantwatch.core.store.migrations import MIGRATIONS
from plantwatch.core.synth.pcapwriter import write_pcap

REAL = Path(__file__).parent / "data" / "real"


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def test_new_store_is_current_private_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        assert st.version == len(MIGRATIONS)
        assert st.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert st.integrity_ok()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_tables_hold_every_column_of_their_frames(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st:
        assert set(SESSIONS) - {"ops"} <= _columns(st.db, "sessions")
        assert set(SESSION_OPS) <= _columns(st.db, "session_ops")
        assert set(DEVICES) <= _columns(st.db, "devices")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer plantwatch"):
        Store(path)


def test_readonly_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    with Store(path, readonly=True) as st, pytest.raises(StoreError, match="read-only"), st.transaction():
        pass


def _split(src: Path, dst_a: Path, dst_b: Path, at: int) -> None:
    recs = []
    for b in read_batches([src]):
        for i in range(len(b)):
            o, n = int(b.offset[i]), int(b.caplen[i])
            recs.append((int(b.ts[i]), b.data[o:o + n].tobytes()))
    write_pcap(dst_a, recs[:at], nanosecond=True)
    write_pcap(dst_b, recs[at:], nanosecond=True)


def _sessions(st: Store) -> pl.DataFrame:
    return st.frame("SELECT proto, client_lo, client_port, server_lo, server_port, state,"
                    " pkts_c2s + pkts_s2c AS pkts FROM sessions ORDER BY 1, 2, 3, 4, 5")


def test_appending_continues_sessions_and_inventory(tmp_path: Path) -> None:
    """The two halves of a capture appended one after the other give what the whole gives."""
    src = REAL / "modbus_mixed_mb2.pcap"
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    _split(src, a, b, 6000)
    with Store(tmp_path / "whole.sqlite") as whole:
        Ingest(whole).run([src])
        want_sessions = _sessions(whole)
        want_devices = whole.frame("SELECT device, pkts_sent, pkts_recv, role FROM devices ORDER BY device")
    with Store(tmp_path / "halves.sqlite") as halves:
        Ingest(halves).run([a])
        Ingest(halves).run([b])
        got_sessions = _sessions(halves)
        got_devices = halves.frame("SELECT device, pkts_sent, pkts_recv, role FROM devices ORDER BY device")
        assert halves.execute("SELECT COUNT(*) FROM captures").fetchone()[0] == 2
    assert got_sessions.equals(want_sessions)
    assert got_devices.equals(want_devices)


def test_failing_migration_leaves_previous_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    import plantwatch.core.store.database as store_module

    broken = "CREATE TABLE extra (a INTEGER); -- a comment; with a semicolon\nINSERT INTO nowhere VALUES (1);"
    monkeypatch.setattr(store_module, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(StoreError, match="no such table: nowhere"):
        Store(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'extra'").fetchone()[0] == 0
    db.close()
