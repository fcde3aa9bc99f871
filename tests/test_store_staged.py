"""Large upserts go through a staging table, split by which columns are NULL
(core/store/staged.py): the tables end exactly as row-by-row binding leaves them, rowids and
conflict handling included."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store import staged
from plantwatch.core.store.database import Store
from plantwatch.core.synth import mixed, office

TABLES = ("sessions", "session_ops", "devices", "captures", "baseline_devices")


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("staged")
    a, b = d / "a.pcapng", d / "b.pcapng"
    mixed.generate(a, 8_000, 3)
    mixed.generate(b, 6_000, 4, office.plant)
    return a, b


def _rows(db: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(db) as con:   # rowid too: the order rows went in must be the same
        return {t: con.execute(f"SELECT rowid, * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}


def _analyze(store: Path, *caps: Path) -> None:
    with Store(store) as st:
        for cap in caps:
            Ingest(st).run([cap])


def test_staged_runs_store_what_row_by_row_stores(tmp_path: Path, captures: tuple[Path, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = staged.upsert_staged

    def spy(db: sqlite3.Connection, table: str, frame: pl.DataFrame, conflict: str) -> None:
        calls.append(table)
        real(db, table, frame, conflict)

    monkeypatch.setattr(staged, "upsert_staged", spy)
    monkeypatch.setattr(staged, "MIN_ROWS", 10**12)
    _analyze(tmp_path / "plain.sqlite", *captures)
    assert calls == []
    monkeypatch.setattr(staged, "MIN_ROWS", 1)
    monkeypatch.setattr(staged, "_MIN_CONSTANT_ROWS", 1)
    _analyze(tmp_path / "staged.sqlite", *captures)
    assert "sessions" in calls and "session_ops" in calls and "devices" in calls
    plain, stage = _rows(tmp_path / "plain.sqlite"), _rows(tmp_path / "staged.sqlite")
    for t in TABLES:
        assert len(stage[t]) == len(plain[t]) > 0, t
        assert stage[t] == plain[t], t


def test_staged_upsert_replaces_nulls_and_keeps_the_last_duplicate(empty_store: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staged, "MIN_ROWS", 1)
    with Store(empty_store) as st:
        first = pl.DataFrame({"session_id": [1, 2, 3], "state": ["a", None, "c"],
                              "tls_sni": ["x.example", "y.example", None]})
        with st.transaction():
            st.upsert("sessions", first)
        # key 2 twice in one frame: the later row wins, as with one INSERT per row
        second = pl.DataFrame({"session_id": [1, 2, 2, 4], "state": [None, "b1", "b2", None],
                               "tls_sni": [None, None, "z.example", None]})
        with st.transaction():
            st.upsert("sessions", second)
        rows = st.execute("SELECT session_id, state, tls_sni FROM sessions ORDER BY session_id").fetchall()
        # the staging table leaves nothing behind
        temp = st.execute("SELECT name FROM sqlite_temp_master").fetchall()
    assert rows == [(1, None, None), (2, "b2", "z.example"), (3, "c", None), (4, None, None)]
    assert temp == []


@pytest.mark.parametrize("text", ["o'brien.example", "a\x00b", "ünïcode ' '' end", ""])
def test_constant_columns_written_as_literals_keep_their_values(empty_store: Path, text: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A column holding one value in a whole part goes into the statement as a literal: text
    with quotes (or a NUL, bound instead), the extreme integers and booleans come back exact."""
    monkeypatch.setattr(staged, "MIN_ROWS", 1)
    monkeypatch.setattr(staged, "_MIN_CONSTANT_ROWS", 1)
    n = 5
    frame = pl.DataFrame({
        "session_id": list(range(1, n + 1)),
        "tls_sni": [text] * n,
        "client_lo": [-(1 << 63)] * n,          # int64's minimum: bound, not a literal
        "server_lo": [(1 << 63) - 1] * n,
        "handshake": [True] * n,
        "midstream": [False] * n,
        "vlan": [None] * n,
        "bytes_c2s": [0, 1, 2, 3, None],
    }, schema_overrides={"vlan": pl.Int32})
    with Store(empty_store) as st:
        with st.transaction():
            st.upsert("sessions", frame)
        rows = st.execute("SELECT session_id, tls_sni, typeof(tls_sni), client_lo, typeof(client_lo),"
                          " server_lo, handshake, midstream, vlan, bytes_c2s FROM sessions"
                          " ORDER BY session_id").fetchall()
    assert rows == [(i + 1, text, "text", -(1 << 63), "integer", (1 << 63) - 1, 1, 0, None,
                     i if i < 4 else None) for i in range(n)]
