"""Sensor mode without a network: the ring follower (growing files, resume, truncation,
corruption, rotation), the sensor loop over a ring directory against the offline engine, kill -9
and restart, a full disk, and dumpcap's checks and statistics."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plantwatch.core.capture import dumpcap
from plantwatch.core.capture.ring import RingFollower
from plantwatch.core.inventory.zones import Zones
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.pipeline.sensor import RING_STATE, Sensor, SensorConfig
from plantwatch.core.store.database import Store
from tests.sensor_support import ZONES_TOML, epb_offsets, incident, records, write_ring

ROOT = Path(__file__).resolve().parent.parent
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _recs(n_normal: int = 2000) -> list[tuple[int, bytes]]:
    return incident(normal=n_normal)


def _follow_all(fol: RingFollower, writer: bool = False) -> list[tuple[int, int, bytes]]:
    out = []
    for _ in range(1000):
        fol.scan()
        pending = fol.pending()
        if not pending:
            break
        for rf in pending:
            b = fol.read(rf, writer)
            if b is not None:
                out += [(int(b.ts[i]), int(b.frame[i]), bytes(b.data[int(b.offset[i]):int(b.offset[i]) + int(b.caplen[i])]))
                        for i in range(len(b))]
            if not rf.done:
                break
        if not writer and not fol.pending():
            break
    return out


# --------------------------------------------------------------------------- the follower

def test_growing_file_read_in_pieces_and_resumed_from_saved_state(tmp_path: Path) -> None:
    full = write_ring(tmp_path / "src", _recs(), 1)[0]
    data = full.read_bytes()
    ring = tmp_path / "ring"
    ring.mkdir()
    live = ring / full.name
    rnd = random.Random(3)
    got = []
    pos = 0
    fol = RingFollower(ring)
    with open(live, "wb") as out:
        while pos < len(data):
            n = rnd.randrange(1, 3000)   # cuts blocks anywhere, as a writer flushing mid-block does
            out.write(data[pos:pos + n])
            out.flush()
            pos += n
            fol.scan()
            for rf in fol.pending():
                b = fol.read(rf, writer_active=True)
                if b is not None:
                    got += [(int(b.ts[i]), int(b.frame[i])) for i in range(len(b))]
            if rnd.random() < 0.2:  # a restart: a new follower from the saved JSON state
                fol = RingFollower(ring, json.loads(json.dumps(fol.state())))
    assert not fol.pending()[0].done  # the newest file may still grow while the writer runs
    want = [(ts, fr) for ts, fr, _ in records([full])]
    assert got == want  # every record once, in order, frame numbers as tshark counts them


def test_truncated_and_corrupt_ring_files_warn_and_the_rest_is_read(tmp_path: Path) -> None:
    ring = tmp_path / "ring"
    paths = write_ring(ring, _recs(), 3)
    want = records(paths)
    per_file = [len(records([p])) for p in paths]
    # file 1: one EPB's length field destroyed in the middle; file 2: cut inside its last block
    offs = epb_offsets(paths[0])
    bad = offs[len(offs) // 2]
    raw = bytearray(paths[0].read_bytes())
    raw[bad + 4:bad + 8] = b"\xff\xff\xff\x7f"
    paths[0].write_bytes(bytes(raw))
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[:-10])
    warnings: list[str] = []
    fol = RingFollower(ring, on_warning=warnings.append)
    got = _follow_all(fol)
    assert any("corrupt" in w and paths[0].name in w for w in warnings), warnings
    assert any("truncated" in w and paths[1].name in w for w in warnings), warnings
    lost_frame = len(offs) // 2 + 1
    expect = [r for r in want[:per_file[0]] if r[1] != lost_frame] + want[per_file[0]:per_file[0] + per_file[1] - 1] \
        + want[per_file[0] + per_file[1]:]
    assert [(t, fr) for t, fr, _ in got] == [(t, fr) for t, fr, _ in expect]
    assert [b for *_, b in got] == [b for *_, b in expect]


def test_files_rotated_away_before_read_are_reported(tmp_path: Path) -> None:
    ring = tmp_path / "ring"
    paths = write_ring(ring, _recs(), 4)
    missed = []
    fol = RingFollower(ring, on_missed=missed.append, read_bytes=4096)
    fol.scan()
    rf = fol.pending()[0]
    fol.read(rf, writer_active=True)          # 4 kB of the first file
    paths[0].unlink()                          # rotation removes it, and file 2 as well
    paths[1].unlink()
    (ring / paths[3].name.replace("_00004_", "_00006_")).write_bytes(paths[3].read_bytes())
    fol.scan()
    names = [m.name for m in missed]
    assert paths[0].name in names and paths[1].name in names
    assert any(n.startswith("pw-1_00005_") for n in names)  # never seen: a gap in the sequence
    first = next(m for m in missed if m.name == paths[0].name)
    assert first.unread_bytes and first.unread_bytes > 0 and first.packets_read > 0
    assert fol.missed == 3


# --------------------------------------------------------------------------- the sensor loop

def _zones(tmp_path: Path) -> Zones:
    z = tmp_path / "zones.toml"
    z.write_text(ZONES_TOML)
    return Zones.load(z)


def _follow(store: Path, ring: Path, zones: Zones, **cfg) -> int:
    conf = SensorConfig(exit_idle_s=0.2, poll_s=0.05, report_s=3600, **cfg)
    return Sensor(store, ring, zones=zones, config=conf).run()


def _rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


SESSIONS = "SELECT session_id, state, pkts_c2s, pkts_s2c, bytes_c2s, bytes_s2c FROM sessions ORDER BY 1"
BREACHES = "SELECT model, device, first_ts FROM breaches ORDER BY 1, 2, 3"


def test_sensor_over_a_ring_matches_the_offline_engine_and_restarts_count_nothing_twice(tmp_path: Path) -> None:
    zones = _zones(tmp_path)
    paths = write_ring(tmp_path / "ring", _recs(), 3)
    ref = tmp_path / "ref.sqlite"
    with Store(ref) as st:
        Ingest(st, zones).run(paths)
    store = tmp_path / "sensor" / "s.sqlite"
    assert _follow(store, tmp_path / "ring", zones) == 0
    assert _rows(store, SESSIONS) == _rows(ref, SESSIONS)
    models = {m for m, *_ in _rows(store, BREACHES)}
    assert {"ics.reprogram", "ics.failed_connections"} <= models
    assert _rows(store, "SELECT SUM(packets) FROM captures")[0][0] == len(records(paths))
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "ring").stat().st_mode & 0o777) == "0o700"
    # a second start: everything was read; nothing is added, nothing counted twice
    before = (_rows(store, SESSIONS), _rows(store, BREACHES), _rows(store, "SELECT * FROM captures"))
    assert _follow(store, tmp_path / "ring", zones) == 0
    assert (_rows(store, SESSIONS), _rows(store, BREACHES), _rows(store, "SELECT * FROM captures")) == before
    with Store(store, readonly=True) as st:
        state = json.loads(st.execute("SELECT value FROM state WHERE name = ?", (RING_STATE,)).fetchone()[0])
    assert all(f["done"] for f in state["files"]) and state["missed"] == 0


_CHILD = """
import sys
from plantwatch.core.pipeline.sensor import Sensor, SensorConfig, configure_logging
from plantwatch.core.inventory.zones import Zones
configure_logging()
cfg = SensorConfig(chunk_packets=256, run_packets=1500, exit_idle_s=0.3, poll_s=0.02, report_s=3600,
                   run_seconds=3600, detect_wall_s=0.05)
sys.exit(Sensor(sys.argv[1], sys.argv[2], zones=Zones.load(sys.argv[3]), config=cfg).run())
"""


def _child(store: Path, ring: Path, zones: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(store), str(ring), str(zones)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_kill_9_during_ingest_then_restart_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    _zones(tmp_path)
    zfile = tmp_path / "zones.toml"
    recs = _recs(6000)
    paths = write_ring(tmp_path / "ring", recs, 3)
    ref = tmp_path / "ref" / "s.sqlite"
    p = _child(ref, tmp_path / "ring", zfile)
    assert p.wait(120) == 0, p.stderr.read()
    store = tmp_path / "crash" / "s.sqlite"
    p = _child(store, tmp_path / "ring", zfile)
    deadline = time.monotonic() + 60
    killed = False
    while time.monotonic() < deadline and p.poll() is None:
        try:
            done = _rows(store, "SELECT COUNT(*) FROM captures WHERE status = 'complete'")[0][0]
            n = _rows(store, "SELECT COUNT(*) FROM sessions")[0][0]
        except sqlite3.Error:
            done = n = 0
        if n and done >= 1:   # some runs closed, others in flight
            os.kill(p.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    p.wait(30)
    assert killed, "the sensor finished before it could be killed"
    p = _child(store, tmp_path / "ring", zfile)
    assert p.wait(120) == 0, p.stderr.read()
    assert _rows(store, "PRAGMA integrity_check") == [("ok",)]
    assert _rows(store, SESSIONS) == _rows(ref, SESSIONS)          # no session twice, none lost
    assert _rows(store, BREACHES) == _rows(ref, BREACHES)          # no breach twice
    dup = _rows(store, "SELECT model, device, first_ts, COUNT(*) FROM breaches GROUP BY 1, 2, 3 HAVING COUNT(*) > 1")
    assert dup == []
    per_file = _rows(store, "SELECT path, packets, status FROM captures ORDER BY path")
    assert [(Path(a).name, n, s) for a, n, s in per_file] == \
        [(q.name, len(records([q])), "complete") for q in paths]   # every packet of every file, once
    assert sum(n for _, n, _ in per_file) == len(recs)


@pytest.mark.skipif(not IS_ROOT or shutil.which("mount") is None, reason="needs root to mount a tmpfs")
def test_full_disk_stops_cleanly_with_a_clear_error_and_an_intact_store(tmp_path: Path) -> None:
    zones = _zones(tmp_path)
    write_ring(tmp_path / "ring", _recs(8000), 2)
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], check=True)
    try:
        store = mnt / "s.sqlite"
        sensor = Sensor(store, tmp_path / "ring", zones=zones,
                        config=SensorConfig(exit_idle_s=0.2, poll_s=0.02, chunk_packets=512, report_s=3600))
        assert sensor.run() == 1
        assert sensor.status.state == "error"
        assert "disk is full" in sensor.status.message or "No space" in sensor.status.message
        assert "\n" not in sensor.status.message
        with Store(store, readonly=True) as st:
            assert st.integrity_ok()
        # intact means resumable: moved to a disk with room, the same store finishes the ring with
        # exactly what a sensor that never ran out of space stores (nothing lost, nothing twice)
        moved = tmp_path / "moved"
        moved.mkdir()
        for part in mnt.glob("s.sqlite*"):
            shutil.copy(part, moved / part.name)
    finally:
        unmounted = subprocess.run(["umount", str(mnt)], check=False, capture_output=True, text=True)
        if unmounted.returncode:   # never leave the tmpfs behind, whatever failed
            subprocess.run(["umount", "-l", str(mnt)], check=False)
    # the error path closed every file it opened on the full disk (else "target is busy")
    assert unmounted.returncode == 0, unmounted.stderr
    ref = tmp_path / "ref" / "s.sqlite"
    ref.parent.mkdir()
    assert _follow(ref, tmp_path / "ring", zones) == 0
    assert _follow(moved / "s.sqlite", tmp_path / "ring", zones) == 0
    assert _rows(moved / "s.sqlite", SESSIONS) == _rows(ref, SESSIONS)
    assert _rows(moved / "s.sqlite", BREACHES) == _rows(ref, BREACHES)
    assert _rows(moved / "s.sqlite", "SELECT SUM(packets) FROM captures") == \
        _rows(ref, "SELECT SUM(packets) FROM captures")


# --------------------------------------------------------------------------- dumpcap

def test_dumpcap_statistics_are_parsed() -> None:
    text = ("Capturing on 'eth1'\nFile: /x/pw-1_00001_20261126004929.pcapng\nPackets: 4 "
            "File: /x/pw-1_00002_20261126004930.pcapng\nPackets captured: 24\n"
            "Packets received/dropped on interface 'eth1': 30/6 (pcap:4/dumpcap:1/flushed:1/ps_ifdrop:2) (80.0%)\n")
    s = dumpcap.parse_final(text)
    assert (s.captured, s.received, s.dropped, s.ifdrop) == (24, 30, 6, 2)
    assert dumpcap.parse_final("Packets: 3 ").received is None


@pytest.mark.skipif(dumpcap.dumpcap_path() is None, reason="dumpcap not installed")
def test_capture_checks_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(dumpcap.CaptureSetupError, match="no interface 'pwnosuch0'"):
        dumpcap.check_capture("pwnosuch0")
    with pytest.raises(dumpcap.CaptureSetupError, match="not an interface name"):
        dumpcap.check_capture("eth0; rm -rf /")
    d = tmp_path / "open"
    d.mkdir(mode=0o777)
    d.chmod(0o777)
    with pytest.raises(dumpcap.CaptureSetupError, match="other users may write"):
        dumpcap.secure_dir(d)


@pytest.mark.skipif(not IS_ROOT or shutil.which("setpriv") is None or dumpcap.dumpcap_path() is None,
                    reason="needs root, setpriv and dumpcap to try as an unprivileged user")
def test_an_unprivileged_user_is_told_how_to_get_capture_permission() -> None:
    code = "from plantwatch.core.capture.dumpcap import check_capture, CaptureSetupError\ntry:\n check_capture('lo')\nexcept CaptureSetupError as e:\n print(e)\n"
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    if "Permission denied" in out.stderr and "python" in out.stderr.lower():
        pytest.skip("the venv is not readable by nobody")
    assert "wireshark group" in out.stdout and "setcap" in out.stdout, out.stdout + out.stderr
    assert out.stdout.count("\n") == 1


@pytest.mark.skipif(not IS_ROOT or dumpcap.dumpcap_path() is None, reason="needs root and dumpcap")
def test_dumpcap_ring_on_loopback_starts_stops_and_is_private(tmp_path: Path) -> None:
    ring = tmp_path / "ring"
    d = dumpcap.Dumpcap("lo", ring, ring_size_mb=0.01, ring_files=3, capture_filter="udp port 9")
    d.start()
    try:
        import socket

        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(30):
            time.sleep(0.5)
            if d.stats().captured or list(ring.glob("*.pcapng")):
                break
        for _ in range(20):
            s.sendto(b"x" * 50, ("127.0.0.1", 9))
        time.sleep(1.0)
        assert d.alive()
    finally:
        stats = d.stop()
    assert stats.received is not None and stats.received >= 20, stats
    files = list(ring.glob("*.pcapng"))
    assert files and all(oct(p.stat().st_mode & 0o777) == "0o600" for p in files)
    assert oct(ring.stat().st_mode & 0o777) == "0o700"
    assert not (ring / dumpcap.PID_FILE).exists()


def test_interface_statistics_blocks_give_capture_drops(tmp_path: Path) -> None:
    import struct

    from plantwatch.core.synth.pcapwriter import PcapngWriter

    ring = tmp_path / "ring"
    ring.mkdir()
    p = ring / "pw-1_00001_20260302060000.pcapng"
    recs = _recs(40)
    with PcapngWriter(p) as w:
        for ts, fr in recs:
            w.write(ts, fr)
        opts = b"".join(struct.pack("<HHQ", code, 8, v) for code, v in ((4, 1000), (5, 7), (7, 3))) + b"\0" * 4
        w.write_raw_block(5, struct.pack("<III", 0, 0, 0) + opts)
    fol = RingFollower(ring)
    assert len(_follow_all(fol)) == len(recs)
    rf = next(iter(fol.files.values()))
    assert rf.cursor.isb == {0: {"ifrecv": 1000, "ifdrop": 7, "osdrop": 3}}
    s = Sensor(tmp_path / "s.sqlite", ring)
    s.follower = fol
    s._capture_stats(dumpcap.CaptureStats(captured=len(recs)))
    assert s.status.capture_dropped == 10


@pytest.mark.skipif(dumpcap.dumpcap_path() is None, reason="dumpcap not installed")
def test_sensor_command_fails_in_one_line_on_a_missing_interface(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "plantwatch", "sensor", "-i", "pwnosuch0", "--store",
                          str(tmp_path / "s.sqlite")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    errors = [ln for ln in out.stderr.splitlines() if " ERROR " in ln]
    assert len(errors) == 1 and "no interface 'pwnosuch0'" in errors[0], out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "plantwatch", "sensor", "--store", str(tmp_path / "s.sqlite")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "-i IFACE" in out.stderr
