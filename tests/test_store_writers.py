"""Who may write a store, and when: concurrent runs both land, a writer waits for another with a
visible line, another program's database is never touched, a store is private to its owner."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwatch import demo_data
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store, StoreError
from plantwatch.core.store.lease import WriterLease
from plantwatch.tui.cli import main

REAL = Path(__file__).parent / "data" / "real"
SNAP7 = REAL / "s7comm_snap7.pcap"
DEMO = demo_data.files()
WAIT_S = 300.0     # how long a test waits for a subprocess to reach a point (not a timing check)


def _analyze(store: Path, capture: Path, err: Path) -> subprocess.Popen:
    with err.open("w") as f:
        return subprocess.Popen([sys.executable, "-m", "plantwatch", "analyze", "--store", str(store),
                                 str(capture), "--json"], stdout=subprocess.DEVNULL, stderr=f)


def _wait_for(path: Path, text: str, procs: list[subprocess.Popen]) -> None:
    end = time.monotonic() + WAIT_S
    while text not in path.read_text():
        assert all(p.poll() is None for p in procs), path.read_text()
        assert time.monotonic() < end, f"no {text!r} in {path}: {path.read_text()!r}"
        time.sleep(0.05)


def _totals(path: Path) -> tuple[int, int, str, str]:
    db = sqlite3.connect(path)
    try:
        sent, recv = db.execute("SELECT SUM(pkts_sent), SUM(pkts_recv) FROM devices").fetchone()
        meta = dict(db.execute("SELECT name, value FROM baseline_meta").fetchall())
        return sent, recv, meta["runs"], meta["hours"]
    finally:
        db.close()


def test_two_concurrent_analyze_runs_both_land(tmp_path: Path) -> None:
    """The demo's learn and incident captures analysed at the same time into one store give
    what analysing them one after the other gives: 2 runs in the baseline, every packet counted."""
    learn, incident = DEMO / demo_data.LEARN, DEMO / demo_data.INCIDENT
    store = tmp_path / "both.sqlite"
    Store(store).close()
    lease = WriterLease(store)
    lease.acquire(until_stopped=False, on_wait=print)   # both runs start while the store is busy
    errs = [tmp_path / "a.err", tmp_path / "b.err"]
    procs = [_analyze(store, learn, errs[0]), _analyze(store, incident, errs[1])]
    try:
        for e in errs:
            _wait_for(e, "waiting for the store", procs)
    finally:
        lease.release()
    for p, e in zip(procs, errs, strict=True):
        assert p.wait(WAIT_S) == 0, e.read_text()
        assert f"waiting for the store {store}: another plantwatch process (pid {os.getpid()}" in e.read_text()
    db = sqlite3.connect(store)
    order = [Path(r[0]) for r in db.execute("SELECT path FROM captures ORDER BY capture_id")]
    db.close()
    assert sorted(order) == sorted([learn, incident])
    seq = tmp_path / "sequential.sqlite"    # the same captures one after the other, in the order they landed
    with Store(seq) as st:
        for capture in order:
            Ingest(st).run([capture])
    got, want = _totals(store), _totals(seq)
    assert got == want
    assert got[2] == "2"


def test_a_writer_waits_for_a_long_transaction_of_another(tmp_path: Path) -> None:
    """Another connection holds the write lock longer than SQLite's 5 s busy timeout: analyze
    says it waits, then lands, instead of failing with "database is locked"."""
    store = tmp_path / "s.sqlite"
    Store(store).close()
    other = sqlite3.connect(store, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    err = tmp_path / "err"
    proc = _analyze(store, SNAP7, err)
    try:
        _wait_for(err, "another connection is writing to it", [proc])
        time.sleep(6.0)      # hold the lock past SQLite's 5 s busy timeout
    finally:
        other.execute("COMMIT")
        other.close()
    assert proc.wait(WAIT_S) == 0, err.read_text()
    assert "database is locked" not in err.read_text()
    with Store(store, readonly=True) as st:
        assert st.execute("SELECT COUNT(*) FROM captures WHERE status = 'complete'").fetchone()[0] == 1


def test_a_sensor_holding_the_store_makes_a_writer_refuse_at_once(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    Store(store).close()
    lease = WriterLease(store)
    lease.acquire(until_stopped=True, on_wait=print)
    try:
        res = CliRunner().invoke(main, ["analyze", "--store", str(store), str(SNAP7)])
    finally:
        lease.release()
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"plantwatch: {store}: another plantwatch process (pid {os.getpid()}")
    assert "until it is stopped" in lines[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("table", ["users", "captures"])
def test_another_programs_database_is_left_byte_identical(tmp_path: Path, table: str) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute(f"INSERT INTO {table} (name) VALUES ('alice')")
    db.commit()
    db.close()
    before = _sha(path)
    listing = sorted(p.name for p in tmp_path.iterdir())
    res = CliRunner().invoke(main, ["analyze", "--store", str(path), str(SNAP7)])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        f"plantwatch: {path}: not a plantwatch store (an SQLite database with schema version 0 and "
        f"tables {table})"]
    assert _sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing   # no -wal, -shm or -lock left
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    db.close()


def test_other_files_are_refused_untouched(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, but long enough to hold an SQLite header " * 4)
    app = tmp_path / "app.db"
    db = sqlite3.connect(app)
    db.execute("PRAGMA application_id = 1234")
    db.execute("CREATE TABLE captures (x)")
    db.commit()
    db.close()
    for path, why in ((text, "not an SQLite database"), (app, "SQLite application id 0x4d2")):
        before = _sha(path)
        with pytest.raises(StoreError, match=f"not a plantwatch store \\({why}\\)"):
            Store(path)
        assert _sha(path) == before


def test_two_runs_creating_one_new_store_both_land(tmp_path: Path) -> None:
    """Neither finds the other's half-made file and calls it foreign: stores are made under the
    writer lease, which the test holds until both wait for it."""
    store = tmp_path / "new.sqlite"
    lease = WriterLease(store)
    lease.acquire(until_stopped=False, on_wait=print)
    errs = [tmp_path / "a.err", tmp_path / "b.err"]
    procs = [_analyze(store, SNAP7, errs[0]), _analyze(store, REAL / "s7comm_rw_vartab.pcapng", errs[1])]
    try:
        for e in errs:
            _wait_for(e, "waiting for the store", procs)
    finally:
        lease.release()
    for p, e in zip(procs, errs, strict=True):
        assert p.wait(WAIT_S) == 0, e.read_text()
    with Store(store, readonly=True) as st:
        assert st.execute("SELECT COUNT(*) FROM captures WHERE status = 'complete'").fetchone()[0] == 2


def test_an_empty_sqlite_database_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 0")
    db.execute("CREATE TABLE t (x)")
    db.execute("DROP TABLE t")       # an SQLite file with a header and no schema
    db.commit()
    db.close()
    before = _sha(path)
    with pytest.raises(StoreError, match="not a plantwatch store \\(an empty SQLite database\\)"):
        Store(path)
    assert _sha(path) == before


def test_new_and_empty_files_become_stores_with_the_application_id(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    for path in (tmp_path / "new.sqlite", empty):
        Store(path).close()
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA application_id").fetchone()[0] == 0x506C5774
        db.close()
        Store(path).close()    # and it is recognised again


def test_an_existing_store_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    os.chmod(path, 0o644)
    res = CliRunner().invoke(main, ["analyze", "--store", str(path), str(SNAP7)])
    assert res.exit_code == 0, res.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for side in ("-wal", "-shm", "-lock"):
        p = Path(f"{path}{side}")
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, side
