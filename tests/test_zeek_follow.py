"""`plantwatch sensor --zeek DIR`: following a log directory while Zeek's logger appends and rotates."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwatch.core.pipeline.zeek.follow import ZeekFollower
from plantwatch.core.store.database import Store
from plantwatch.tui.cli import main
from tests.zeek_support import ZEEK_DATA, unmask, zeek_sessions


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unmask(ZEEK_DATA / "modbus", tmp_path_factory.mktemp("src") / "modbus")


def split(path: Path) -> tuple[list[str], list[str]]:
    lines = path.read_text().splitlines(keepends=True)
    head = [ln for ln in lines if ln.startswith("#") and not ln.startswith("#close")]
    return head, [ln for ln in lines if not ln.startswith("#")]


def sessions(store: Path) -> dict[int, tuple]:
    db = sqlite3.connect(store)
    try:
        return {r[0]: r[1:] for r in db.execute("SELECT client_port, state, n_ops, server_port FROM sessions")}
    finally:
        db.close()


def test_rotation_partial_lines_and_restart(src: Path, tmp_path: Path) -> None:
    spool, store = tmp_path / "spool", tmp_path / "s.sqlite"
    spool.mkdir()
    head, rows = split(src / "modbus_detailed.log")
    cur = spool / "modbus_detailed.log"
    cur.write_text("".join(head + rows[:10]) + rows[10][:15])  # the logger is mid-line
    with Store(store) as st:
        f = ZeekFollower(st, spool)
        assert f.poll() == 10
        # no conn.log line yet: an open session built from the Modbus lines, 20 ops so far
        (port, (state, n_ops, server_port)), = sessions(store).items()
        assert (port, server_port, state, n_ops) == (47785, 502, "established", 20)
        assert f.poll() == 0
        with cur.open("a") as fh:
            fh.write(rows[10][15:] + "".join(rows[11:20]))
        assert f.poll() == 10
        # rotation: the file is renamed, a new one starts with its header
        cur.rename(spool / "modbus_detailed.2020-07-25-07-00-00.log")
        cur.write_text("".join(head + rows[20:]))
        assert f.poll() == len(rows) - 20
    # a restart resumes each file where it stopped; the pending lines come back from the store
    with Store(store) as st:
        f = ZeekFollower(st, spool)
        assert f.poll() == 0
        ch, crows = split(src / "conn.log")
        (spool / "conn.log").write_text("".join(ch + crows))
        assert f.poll() == 2
        f.close()
    full = {r["client_port"]: (r["state"], r["n_ops"], r["server_port"]) for r in zeek_sessions(src).iter_rows(named=True)}
    assert sessions(store) == full  # as if read in one go
    assert full[47785] == ("closed", 46, 502)
    db = sqlite3.connect(store)
    models = {r[0] for r in db.execute("SELECT model FROM breaches")}
    assert "ics.new_action" in models  # stored by model id
    # every line was read once: captures hold the records of the three files
    recs = dict(db.execute("SELECT path, packets FROM captures").fetchall())
    assert {Path(p).name: n for p, n in recs.items()} == {
        "modbus_detailed.2020-07-25-07-00-00.log": 20, "modbus_detailed.log": len(rows) - 20, "conn.log": 2}


def test_sensor_command(src: Path, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    for p in src.glob("*.log"):
        (spool / p.name).write_text(p.read_text())
    store = tmp_path / "s.sqlite"
    res = CliRunner().invoke(main, ["sensor", "--zeek", str(spool), "--store", str(store), "--exit-idle", "0.1"])
    assert res.exit_code == 0, res.output
    assert {v[0] for v in sessions(store).values()} == {"closed", "established"}
    res = CliRunner().invoke(main, ["sensor", "--zeek", str(tmp_path / "nope"), "--store", str(store)])
    assert res.exit_code == 2 and "not a directory" in res.stderr
