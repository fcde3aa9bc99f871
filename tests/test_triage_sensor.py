"""The console and a sensor writing one store at once: the console's triage commits in short
BEGIN IMMEDIATE transactions while the sensor commits batches (SQLite's busy timeout makes each
wait for the other); the sensor applies the triage in force from its next batch. Nothing is
lost, and kill -9 of either in the middle leaves the store consistent."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from plantwatch.core.store import triage
from plantwatch.core.store.database import Store
from plantwatch.core.store.triage_apply import apply_triage
from tests.sensor_support import ATTACKER, ZONES_TOML, incident, write_ring

ROOT = Path(__file__).resolve().parent.parent

_SENSOR = """
import sys
from plantwatch.core.pipeline.sensor import Sensor, SensorConfig, configure_logging
from plantwatch.core.inventory.zones import Zones
configure_logging()
cfg = SensorConfig(chunk_packets=256, run_packets=1500, exit_idle_s=0.3, poll_s=0.02, report_s=3600,
                   run_seconds=3600, detect_wall_s=0.05)
sys.exit(Sensor(sys.argv[1], sys.argv[2], zones=Zones.load(sys.argv[3]), config=cfg).run())
"""

# what the console does on a key press (tui/screens/triage_keys.py), in a loop: each committed
# change is printed after its commit
_CONSOLE = """
import sys, time
from plantwatch.core.store.database import Store
from plantwatch.core.store import triage
for k in range(int(sys.argv[2])):
    with Store(sys.argv[1]) as st:
        w, _ = triage.add_window(st, f"w{k}", 0, 2**62, [f"192.0.2.{k % 250 + 1}"], [], [])
        row = st.execute("SELECT breach_id FROM breaches ORDER BY breach_id LIMIT 1").fetchone()
        if row:
            triage.set_state(st, "breach", row[0], "acknowledged", f"pass {k}")
    print(w.window_id, 1 if row else 0, flush=True)
    time.sleep(0.005)
"""

RULES = f"""
[[allow]]
name = "failed ICS connections of the test laptop"
models = ["ics.failed_connections"]
src = ["{ATTACKER[1]}"]
"""

DETECTED = "SELECT breach_id, score, incident_id FROM breach_detected ORDER BY 1"
REF_BREACHES = "SELECT breach_id, score, incident_id FROM breaches ORDER BY 1"
SESSIONS = "SELECT session_id, state, pkts_c2s, pkts_s2c, bytes_c2s, bytes_s2c FROM sessions ORDER BY 1"


def _rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _sensor(store: Path, ring: Path, zones: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SENSOR, str(store), str(ring), str(zones)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _console(store: Path, n: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CONSOLE, str(store), str(n)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(store: Path, sql: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if store.exists() and _rows(store, sql)[0][0]:
                return
        except sqlite3.Error:
            pass
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {sql}")


def _consistent(store: Path) -> None:
    """The effective rows are exactly what the triage in force gives (re-applying changes nothing)."""
    tables = ("SELECT breach_id, score, incident_id FROM breaches ORDER BY 1",
              "SELECT * FROM incidents ORDER BY incident_id", "SELECT * FROM breach_triage ORDER BY 1")
    before = [_rows(store, q) for q in tables]
    with Store(store) as st, st.transaction():
        apply_triage(st)
    assert [_rows(store, q) for q in tables] == before


def test_console_and_sensor_write_one_store_at_once_and_survive_kill_9(tmp_path: Path) -> None:
    zones = tmp_path / "zones.toml"
    zones.write_text(ZONES_TOML)
    ring = tmp_path / "ring"
    write_ring(ring, incident(normal=6000), 3)
    ref = tmp_path / "ref" / "s.sqlite"
    p = _sensor(ref, ring, zones)
    assert p.wait(180) == 0, p.stderr.read()
    ref_breaches = _rows(ref, REF_BREACHES)
    failed = [b for (b,) in _rows(ref, "SELECT breach_id FROM breaches WHERE model = 'ics.failed_connections'")]
    assert ref_breaches and failed

    # the store exists with a rules file loaded before the sensor starts (ahead of time)
    store = tmp_path / "live" / "s.sqlite"
    store.parent.mkdir()
    with Store(store) as st:
        triage.load_rules(st, "rules.toml", RULES, user="tester")

    sensor = _sensor(store, ring, zones)
    _wait_for(store, "SELECT COUNT(*) FROM sessions")
    console = _console(store, 100_000)
    # kill -9 the sensor once some batches are in and the console has written
    _wait_for(store, "SELECT COUNT(*) FROM windows")
    _wait_for(store, "SELECT COUNT(*) FROM captures WHERE status = 'complete'")
    os.kill(sensor.pid, signal.SIGKILL)
    sensor.wait(30)
    # the sensor again, to the end, while the console keeps writing
    sensor = _sensor(store, ring, zones)
    assert sensor.wait(180) == 0, sensor.stderr.read()
    # the console is still writing: kill -9 it in the middle
    assert console.poll() is None, console.stderr.read()
    os.kill(console.pid, signal.SIGKILL)
    out, err = console.communicate(timeout=30)
    assert "Traceback" not in err, err
    printed = [tuple(int(x) for x in ln.split()) for ln in out.splitlines() if ln.strip()]
    assert len(printed) >= 5

    assert _rows(store, "PRAGMA integrity_check") == [("ok",)]
    # nothing the sensor wrote was lost or doubled
    assert _rows(store, SESSIONS) == _rows(ref, SESSIONS)
    assert _rows(store, DETECTED) == ref_breaches
    # nothing the console committed was lost (one more may have committed before it could print)
    stored = [w for (w,) in _rows(store, "SELECT window_id FROM windows ORDER BY 1")]
    assert {w for w, _ in printed} <= set(stored) and len(stored) - len(printed) <= 1
    assert _rows(store, "SELECT COUNT(*) FROM triage_states")[0][0] >= sum(s for _, s in printed)
    # the rule loaded ahead of time covers the breaches the sensor wrote after it
    sup = _rows(store, "SELECT breach_id, label FROM breach_triage WHERE disposition = 'suppressed' ORDER BY 1")
    assert sup == [(b, "failed ICS connections of the test laptop") for b in sorted(failed)]
    assert _rows(store, f"SELECT COUNT(*) FROM breaches WHERE breach_id IN ({','.join(map(str, failed))})"
                        " AND (score != 0 OR incident_id IS NOT NULL)") == [(0,)]
    _consistent(store)
    # withdrawing the rule gives back exactly the breaches the sensor detected
    with Store(store) as st:
        triage.withdraw_rules(st, user="tester")
    assert _rows(store, REF_BREACHES) == ref_breaches
