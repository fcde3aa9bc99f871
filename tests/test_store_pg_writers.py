"""Many writers into one PostgreSQL store, on a private cluster (tests/pg_cluster.py): two sensors'
runs at once beside a reader, and a run killed mid-batch that loses and doubles nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from plantwatch.core.store.database import Store
from tests.tui_support import DEMO, needs_demo

REAL = Path(__file__).parent / "data" / "real"
WAIT_S = 300.0     # how long a test waits for a subprocess to reach a point (not a timing check)
COUNTS = ("SELECT (SELECT COUNT(*) FROM sessions), (SELECT COUNT(*) FROM session_ops),"
          " (SELECT COUNT(*) FROM captures WHERE status = 'complete')")


def _analyze(store: str, capture: Path, *, site: str = "default", sensor: str = "") -> subprocess.Popen:
    args = [sys.executable, "-m", "plantwatch", "--site", site]
    if sensor:
        args += ["--sensor", sensor]
    return subprocess.Popen([*args, "analyze", "--store", store, str(capture), "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _counts(store: str, where: str = "") -> tuple[int, ...]:
    sql = COUNTS if not where else COUNTS.replace(" FROM sessions)", f" FROM sessions WHERE {where})") \
        .replace(" FROM session_ops)", f" FROM session_ops WHERE {where})").replace("'complete')", f"'complete' AND {where})")
    with Store(store, readonly=True) as st:
        return tuple(st.execute(sql).fetchone())


def test_two_sensors_write_at_once_beside_a_reader(pg_cluster) -> None:
    one, two = REAL / "s7comm_snap7.pcap", REAL / "s7comm_rw_vartab.pcapng"
    alone = {}
    for name, cap in (("one", one), ("two", two)):
        dsn = pg_cluster.create_database(f"alone_{name}")
        p = _analyze(dsn, cap)
        assert p.wait(WAIT_S) == 0, p.stderr.read()
        alone[name] = _counts(dsn)
    shared = pg_cluster.create_database("shared")
    Store(shared).close()     # made before: the readers below start on a store
    seen: list[tuple[int, ...]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                seen.append(_counts(shared))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    procs = [_analyze(shared, one, site="north", sensor="n1"), _analyze(shared, two, site="south", sensor="s1")]
    try:
        for p in procs:
            assert p.wait(WAIT_S) == 0, p.stderr.read()
            # a sensor with its own name does not wait for the other's lease
            assert "waiting for the store" not in p.stderr.read()
    finally:
        done.set()
        reader.join()
    assert not errors, errors
    assert seen and all(a <= b for a, b in zip(seen, seen[1:], strict=False))   # commits only ever add
    assert _counts(shared, "site = 'north'") == alone["one"]
    assert _counts(shared, "site = 'south'") == alone["two"]


@needs_demo
def test_a_run_killed_mid_batch_loses_and_doubles_nothing(pg_cluster) -> None:
    import psycopg

    capture = DEMO / "incident.pcapng.gz"
    clean = pg_cluster.create_database("clean")
    p = _analyze(clean, capture)
    assert p.wait(WAIT_S) == 0, p.stderr.read()
    killed = pg_cluster.create_database("killed")
    Store(killed).close()
    p = _analyze(killed, capture)
    # kill -9 while its transaction is open and writing sessions
    with psycopg.connect(killed, autocommit=True) as watch:
        end = time.monotonic() + WAIT_S
        while True:
            assert p.poll() is None, p.stderr.read()
            assert time.monotonic() < end, "the run never opened a transaction"
            busy = watch.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name LIKE %s "
                                 "AND xact_start IS NOT NULL AND query ILIKE '%%sessions%%'",
                                 (f"plantwatch writer pid {p.pid}%",)).fetchone()[0]
            if busy:
                break
            time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert _counts(killed) == (0, 0, 0)      # nothing of the killed run is visible
    p = _analyze(killed, capture)           # run again: the same rows, once
    assert p.wait(WAIT_S) == 0, p.stderr.read()
    assert _counts(killed) == _counts(clean)
    with Store(killed, readonly=True) as a, Store(clean, readonly=True) as b:
        q = "SELECT session_id, state, pkts_c2s, pkts_s2c, n_ops FROM sessions ORDER BY session_id"
        assert a.execute(q).fetchall() == b.execute(q).fetchall()


_SENSOR = """
import sys
from plantwatch.core.pipeline.sensor import Sensor, SensorConfig, configure_logging
from plantwatch.core.inventory.zones import Zones
configure_logging()
cfg = SensorConfig(chunk_packets=256, run_packets=1500, exit_idle_s=1.0, poll_s=0.02, report_s=3600,
                   run_seconds=3600, detect_wall_s=0.05)
sys.exit(Sensor(sys.argv[1], sys.argv[2], zones=Zones.load(sys.argv[3]), config=cfg).run())
"""
SESSIONS = "SELECT session_id, state, pkts_c2s, pkts_s2c, bytes_c2s, bytes_s2c, n_ops FROM sessions ORDER BY session_id"
BREACHES = "SELECT breach_id, model, device, first_ts, score FROM breaches ORDER BY breach_id"


def _sensor(store: str, ring: Path, zones: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SENSOR, store, str(ring), str(zones)],
                            cwd=Path(__file__).resolve().parent.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _rows(store: str, sql: str) -> list[tuple]:
    with Store(store, readonly=True) as st:
        return st.execute(sql).fetchall()


def test_a_sensor_waits_out_a_stopped_server_and_everything_arrives_once(pg_cluster, tmp_path: Path) -> None:
    from tests.sensor_support import ZONES_TOML, incident, write_ring

    zones = tmp_path / "zones.toml"
    zones.write_text(ZONES_TOML)
    recs = incident(normal=6000)
    paths = write_ring(tmp_path / "ring", recs, 3)
    ref = pg_cluster.create_database("sensor_ref")
    p = _sensor(ref, tmp_path / "ring", zones)
    assert p.wait(WAIT_S) == 0, p.stderr.read()
    store = pg_cluster.create_database("sensor_outage")
    Store(store).close()
    p = _sensor(store, tmp_path / "ring", zones)
    end = time.monotonic() + WAIT_S
    while not _rows(store, "SELECT COUNT(*) FROM captures WHERE status = 'complete'")[0][0]:
        assert p.poll() is None and time.monotonic() < end, p.stderr.read() if p.poll() is not None else "slow"
        time.sleep(0.01)
    pg_cluster.stop()                       # some runs closed, others in flight
    try:
        time.sleep(3)                       # the server stays down a while (not a timing check)
        assert p.poll() is None, p.stderr.read()    # the sensor waits, it does not give up
    finally:
        pg_cluster.start()
    assert p.wait(WAIT_S) == 0, p.stderr.read()
    err = p.stderr.read()
    assert "store unreachable" in err and "store reachable again" in err
    assert _rows(store, SESSIONS) == _rows(ref, SESSIONS)       # none lost, none twice
    assert _rows(store, BREACHES) == _rows(ref, BREACHES)
    per_file = _rows(store, "SELECT path, packets, status FROM captures ORDER BY path")
    assert [(Path(a).name, n, s) for a, n, s in per_file] == \
        [(q.name, n, "complete") for q, n in zip(paths, [r[0] for r in _rows(ref, "SELECT packets FROM captures ORDER BY path")],
                                                 strict=True)]
