"""A store written by an older plantwatch opens and resumes; pipeline state this code cannot
resume from is refused with one line, never resumed silently wrong."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from plantwatch import demo_data
from plantwatch.core.flows.sessions import SessionTracker
from plantwatch.core.flows.stateful import ComponentState, StateError
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store, StoreError
from plantwatch.core.store.migrations import MIGRATIONS
from plantwatch.tui.cli import main

DATA = Path(__file__).parent / "data"
OLD_STORE = DATA / "stores" / "main-5b49984.sqlite"     # see tests/data/stores/README.md
SNAP7 = DATA / "real" / "s7comm_snap7.pcap"


def _cut(out: Path, first: int, last: int) -> None:
    editcap = shutil.which("editcap")
    if editcap is None:
        pytest.skip("editcap (Wireshark) is not installed")
    subprocess.run([editcap, "-r", str(demo_data.files() / demo_data.LEARN), str(out), f"{first}-{last}"],
                   check=True)


def _analyze(*args: str) -> dict:
    res = CliRunner().invoke(main, ["analyze", *args, "--json"])
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def _devices(path: Path) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT device, pkts_sent, pkts_recv, bytes_sent, bytes_recv, sessions_client, "
                          "sessions_server, failed_client, peers, read_ops, action_ops, first_ts, last_ts "
                          "FROM devices ORDER BY device").fetchall()
    finally:
        db.close()


def test_a_store_of_main_5b49984_opens_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture (records 1-4000 of the demo's learn capture learned, 4001-8000 analysed) is
    migrated and resumed with records 8001-12000: the same report and inventory as a store
    filled with today's code from the same three parts."""
    monkeypatch.chdir(tmp_path)
    for name, first, last in (("a.pcapng", 1, 4000), ("b.pcapng", 4001, 8000), ("c.pcapng", 8001, 12000)):
        _cut(tmp_path / name, first, last)
    old = tmp_path / "old.sqlite"
    shutil.copyfile(OLD_STORE, old)
    db = sqlite3.connect(old)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    assert db.execute("PRAGMA application_id").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM state WHERE name LIKE '%.version'").fetchone()[0] == 0
    db.close()

    resumed = _analyze("--store", "old.sqlite", "c.pcapng")
    _analyze("--store", "new.sqlite", "--learn", "a.pcapng", "b.pcapng")
    fresh = _analyze("--store", "new.sqlite", "c.pcapng")
    # what resuming carries: the traffic of every device, the sessions (those open at the end of
    # b continue in c), the ICS operations and failed connections. (Not compared: what the old
    # version did not keep. Its baseline never recorded that its first run was a learn run, so
    # it keeps maturing by hours (Baseline state 1 -> 2) and detection differs; it had no device
    # identity; it named captures by relative paths.)
    for section in ("sessions_by_protocol", "ics_operations", "failed_connections"):
        assert resumed[section] == fresh[section], section
    assert resumed["detection"]["baseline_hours"] == fresh["detection"]["baseline_hours"] == 3.0
    assert resumed["detection"]["baseline"] == "learning"
    assert _devices(old) == _devices(tmp_path / "new.sqlite")
    with Store(old, readonly=True) as st:
        assert st.version == len(MIGRATIONS)
        assert st.execute("PRAGMA application_id").fetchone()[0] == 0x506C5774
        assert st.execute("SELECT value FROM baseline_meta WHERE name = 'runs'").fetchone()[0] == "3"
        assert st.execute("SELECT COUNT(*) FROM captures").fetchone()[0] == 3
        # saved again by today's code: with versions
        assert st.execute("SELECT value FROM state WHERE name = 'sessions.version'").fetchone()[0] == b"1"


def _store_with_state(tmp_path: Path) -> Path:
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        Ingest(st).run([SNAP7])
    return path


@pytest.mark.parametrize(("row", "value", "why"), [
    ("sessions.version", b"7", "SessionTracker state version 7 is newer than this plantwatch reads (1)"),
    ("devices.scalars", b'{"_pend_rows": 0, "_later": 1}', "DeviceInventory state does not match version 1 "
                                                           "(unknown: _later; missing: none)"),
    ("baseline.scalars", b'{"_first_ts": 1}', "Baseline state does not match version 3 "
                                              "(unknown: none; missing: _last_ts, _learn_runs, _runs)"),
])
def test_state_that_cannot_be_resumed_is_refused_in_one_line(tmp_path: Path, row: str, value: bytes,
                                                             why: str) -> None:
    path = _store_with_state(tmp_path)
    db = sqlite3.connect(path)
    db.execute("UPDATE state SET value = ? WHERE name = ?", (value, row))
    db.commit()
    db.close()
    before = _devices(path)
    res = CliRunner().invoke(main, ["analyze", "--store", str(path), str(DATA / "real" / "s7comm_rw_vartab.pcapng")])
    assert res.exit_code == 2
    name = row.split(".")[0]
    assert res.stderr.strip().splitlines() == [
        f"plantwatch: {path}: cannot resume its pipeline state '{name}': {why}"]
    assert _devices(path) == before


def test_every_piece_of_memory_is_declared_state() -> None:
    """A frame, an integer or a None kept in a "_" attribute of a stateful component is in its
    declared state: a field added without it would be lost between runs, silently."""
    from plantwatch.core.detection.baseline import Baseline
    from plantwatch.core.inventory.devices import DeviceInventory
    from plantwatch.core.inventory.identity import IdentityTable

    not_state = {"_oui"}   # DeviceInventory's OUI table: given by the caller, not learned
    for obj in (SessionTracker(), DeviceInventory(), IdentityTable(), Baseline()):
        memory = {k for k, v in vars(obj).items() if k.startswith("_") and k not in not_state
                  and (v is None or isinstance(v, pl.DataFrame) or isinstance(v, int) and not isinstance(v, bool))}
        assert memory == set(obj.STATE_FRAMES) | set(obj.STATE_SCALARS), type(obj).__name__


def test_a_frame_of_another_layout_is_refused() -> None:
    tracker = SessionTracker()
    state = tracker.to_state()
    state.frames["_ops"] = state.frames["_ops"].drop(state.frames["_ops"].columns[0])
    with pytest.raises(StateError, match="_ops has other columns or types"):
        SessionTracker().from_state(state)


def test_unversioned_state_is_version_zero_and_migrates() -> None:
    tracker = SessionTracker()
    st = tracker.to_state()
    again = SessionTracker()
    again.from_state(ComponentState(0, st.frames, st.scalars))
    assert again.to_state().scalars == st.scalars


def test_damaged_state_is_refused(tmp_path: Path) -> None:
    path = _store_with_state(tmp_path)
    db = sqlite3.connect(path)
    db.execute("UPDATE state SET value = ? WHERE name = 'devices._src'", (b"not arrow",))
    db.commit()
    db.close()
    with Store(path) as st, pytest.raises(StoreError, match="pipeline state 'devices' is damaged"):
        Ingest(st)


def test_ring_positions_of_another_layout_are_refused(tmp_path: Path) -> None:
    from plantwatch.core.capture.batch import CaptureError
    from plantwatch.core.capture.ring import RingFollower

    old = {"files": [], "last_seq": {"pw": 3}, "missed": 1, "missed_bytes": 10}   # before versions
    follower = RingFollower(tmp_path, old)
    assert follower.last_seq == {"pw": 3} and follower.state()["version"] == 1
    with pytest.raises(CaptureError, match="ring positions have layout version 2, this plantwatch reads 1"):
        RingFollower(tmp_path, {**old, "version": 2})
