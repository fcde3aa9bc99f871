"""Offline runs build the sessions' secondary indexes once at the end (core/store/bulk.py): the
store holds exactly what row-by-row index upkeep gives, the indexes are back after the run, and a
run that fails half-way leaves the store, indexes included, as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store import bulk
from plantwatch.core.store.database import Store
from plantwatch.core.synth import mixed, office

TABLES = ("sessions", "session_ops", "devices", "captures")


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("bulk")
    a, b = d / "a.pcapng", d / "b.pcapng"
    mixed.generate(a, 12_000, 5)
    mixed.generate(b, 6_000, 6, office.plant)
    return a, b


def _indexes(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                           "ORDER BY name").fetchall()


def _rows(db: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(db) as con:
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def _analyze(store: Path, *caps: Path) -> None:
    with Store(store) as st:
        for cap in caps:
            Ingest(st).run([cap])


def test_deferred_indexes_give_the_same_store(tmp_path: Path, captures: tuple[Path, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    drops: list[str] = []
    real = bulk.DeferredIndexes.wrote

    def spy(self: bulk.DeferredIndexes, table: str, rows: int) -> None:
        real(self, table, rows)
        drops.extend(t for t in self.dropped if t not in drops)

    monkeypatch.setattr(bulk.DeferredIndexes, "wrote", spy)
    monkeypatch.setattr(bulk, "MIN_ROWS", 10**12)
    _analyze(tmp_path / "kept.sqlite", *captures)
    assert drops == []
    monkeypatch.setattr(bulk, "MIN_ROWS", 10)
    _analyze(tmp_path / "deferred.sqlite", *captures)
    assert set(drops) == {"sessions", "session_ops"}
    assert _indexes(tmp_path / "deferred.sqlite") == _indexes(tmp_path / "kept.sqlite")
    assert len([n for n, _ in _indexes(tmp_path / "kept.sqlite") if n.startswith("sessions_")]) >= 9
    assert _rows(tmp_path / "deferred.sqlite") == _rows(tmp_path / "kept.sqlite")
    with sqlite3.connect(tmp_path / "deferred.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_run_far_smaller_than_the_store_keeps_the_indexes(tmp_path: Path, captures: tuple[Path, Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MIN_ROWS", 10)
    store = tmp_path / "s.sqlite"
    _analyze(store, captures[0])
    before = _indexes(store)
    with Store(store) as st, st.transaction():
        deferral = bulk.DeferredIndexes(st.db)
        deferral.wrote("sessions", 20)   # 20 rows into a table of hundreds: not worth a rebuild
        assert deferral.dropped == {}
        n = st.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        deferral.wrote("sessions", n)    # more than the table held: the indexes go
        assert "sessions" in deferral.dropped
        deferral.restore()
    assert _indexes(store) == before


def test_a_failed_run_leaves_indexes_and_rows_as_they_were(tmp_path: Path, captures: tuple[Path, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MIN_ROWS", 10)
    store = tmp_path / "s.sqlite"
    _analyze(store, captures[0])
    before_idx, before_rows = _indexes(store), _rows(store)

    def boom(self: bulk.DeferredIndexes) -> None:
        raise RuntimeError("killed before the indexes were rebuilt")

    monkeypatch.setattr(bulk.DeferredIndexes, "restore", boom)
    with pytest.raises(RuntimeError), Store(store) as st:
        Ingest(st).run([captures[1]])
    assert _indexes(store) == before_idx
    assert _rows(store) == before_rows


def test_a_throwaway_store_keeps_the_rows_and_leaves_the_indexes_out(tmp_path: Path, captures: tuple[Path, Path],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """analyze's own temporary store (Store.throwaway): the same rows, no session indexes built."""
    monkeypatch.setattr(bulk, "MIN_ROWS", 10)
    _analyze(tmp_path / "kept.sqlite", *captures)
    with Store(tmp_path / "throwaway.sqlite") as st:
        st.throwaway = True
        for cap in captures:   # the second run finds no indexes to drop, and builds none
            Ingest(st).run([cap])
    names = {n for n, _ in _indexes(tmp_path / "throwaway.sqlite")}
    assert not any(n.startswith(("sessions_", "session_ops_")) for n in names)
    assert names == {n for n, _ in _indexes(tmp_path / "kept.sqlite")
                     if not n.startswith(("sessions_", "session_ops_"))}
    assert _rows(tmp_path / "throwaway.sqlite") == _rows(tmp_path / "kept.sqlite")
