"""Live, end to end: a network namespace with a veth pair; a generated incident is sent onto one
end at a chosen rate (AF_PACKET raw socket), `plantwatch sensor` captures on the other end through
dumpcap. The attack steps must be detected, visible to a read-only reader while the sensor runs,
and every packet sent must be counted once. Needs root, iproute2 and dumpcap (skipped otherwise).
Only the namespace's own interfaces are used, without addresses; it is removed afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plantwatch.core.synth.pcapwriter import write_pcapng
from tests.sensor_support import ATTACKER, ZONES_TOML, incident

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    not (hasattr(os, "geteuid") and os.geteuid() == 0) or shutil.which("ip") is None
    or shutil.which("dumpcap") is None, reason="needs root, iproute2 (ip) and dumpcap")

SENDER = """
import socket, sys, time
from plantwatch.core.capture.files import read_batches
iface, path, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
frames = [bytes(b.data[int(o):int(o) + int(c)]) for b in read_batches([path]) for o, c in zip(b.offset, b.caplen)]
t0 = time.monotonic()
for i, fr in enumerate(frames):
    delay = t0 + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    s.send(fr)
print(len(frames))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns():
    tag = f"{os.getpid() % 100000}"
    ns, a, b = f"pwtest{tag}", f"pwa{tag}", f"pwb{tag}"
    _ip("netns", "add", ns)
    try:
        ex = ["ip", "netns", "exec", ns]
        # no IPv6 (router solicitations, MLD) and no addresses: the only frames are ours
        subprocess.run([*ex, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                        "net.ipv6.conf.default.disable_ipv6=1"], check=True, timeout=30)
        _ip("-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)
        _ip("-n", ns, "link", "set", a, "up")
        _ip("-n", ns, "link", "set", b, "up")
        yield ns, a, b
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def _q(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return []
    try:
        return con.execute(sql, params).fetchall()
    except sqlite3.Error:
        return []
    finally:
        con.close()


def test_sensor_on_a_veth_detects_the_attack_and_counts_every_packet(tmp_path: Path, netns) -> None:
    ns, a, b = netns
    recs = incident(normal=1600)
    cap = tmp_path / "incident.pcapng"
    write_pcapng(cap, recs)
    zones = tmp_path / "zones.toml"
    zones.write_text(ZONES_TOML)
    store = tmp_path / "var" / "plant.sqlite"
    ring = tmp_path / "var" / "ring"
    ex = ["ip", "netns", "exec", ns]
    sensor = subprocess.Popen(
        [*ex, sys.executable, "-m", "plantwatch", "sensor", "-i", b, "--store", str(store), "--ring-dir", str(ring),
         "--ring-size", "0.05", "--ring-files", "100", "--zones", str(zones)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(ring.glob("*.pcapng")) and time.monotonic() < deadline and sensor.poll() is None:
            time.sleep(0.1)
        assert sensor.poll() is None, sensor.stderr.read()
        time.sleep(0.5)  # dumpcap has opened the interface once its first file exists
        sent = subprocess.run([*ex, sys.executable, "-c", SENDER, a, str(cap), "3000"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=True)
        assert int(sent.stdout.strip()) == len(recs)
        # a reader attached read-only sees the attacker and its breaches while the sensor runs
        seen_device = seen_breach = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (seen_device and seen_breach):
            seen_device = bool(_q(store, "SELECT 1 FROM devices WHERE device = ?", (ATTACKER[1],)))
            seen_breach = bool(_q(store, "SELECT 1 FROM breaches WHERE device = ? AND model = ?",
                                  (ATTACKER[1], "ics.reprogram")))
            time.sleep(0.2)
        assert seen_device and seen_breach
        assert sensor.poll() is None
    finally:
        if sensor.poll() is None:
            sensor.send_signal(signal.SIGTERM)
        try:
            rc = sensor.wait(60)
        except subprocess.TimeoutExpired:
            sensor.kill()
            rc = sensor.wait(10)
    log = sensor.stderr.read()
    assert rc == 0, log
    assert "sensor stopped cleanly" in log and "Traceback" not in log
    models = {m for (m,) in _q(store, "SELECT DISTINCT model FROM breaches WHERE device = ?", (ATTACKER[1],))}
    assert {"ics.failed_connections", "net.failed_internal",
            "ics.new_action", "ics.reprogram"} <= models, models
    files = _q(store, "SELECT path, packets FROM captures")
    assert len(files) >= 2                                       # the ring rotated during the test
    assert sum(n for _, n in files) == len(recs)                 # every packet sent, counted once
    assert _q(store, "PRAGMA integrity_check") == [("ok",)]
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in ring.glob("*.pcapng"))
    assert oct(ring.stat().st_mode & 0o777) == "0o700"


def _sensor(ns: str, iface: str, store: Path, ring: Path, zones: Path) -> subprocess.Popen:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "plantwatch", "sensor", "-i", iface, "--store", str(store),
         "--ring-dir", str(ring), "--ring-size", "0.05", "--ring-files", "100", "--zones", str(zones)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_capturing(sensor: subprocess.Popen, ring: Path, before: set[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sensor.poll() is None:
        pid = ring / "dumpcap.pid"
        new = {p.name for p in ring.glob("*.pcapng")} - before
        if new and pid.exists():
            time.sleep(0.5)
            return
        time.sleep(0.1)
    raise AssertionError(sensor.stderr.read() if sensor.poll() is not None else "dumpcap did not start")


def test_kill_9_of_a_capturing_sensor_takes_dumpcap_down_and_a_restart_loses_nothing(tmp_path: Path, netns) -> None:
    ns, a, b = netns
    recs = incident(normal=800)
    half = len(recs) // 2
    caps = [tmp_path / "one.pcapng", tmp_path / "two.pcapng"]
    write_pcapng(caps[0], recs[:half])
    write_pcapng(caps[1], recs[half:])
    zones = tmp_path / "zones.toml"
    zones.write_text(ZONES_TOML)
    store, ring = tmp_path / "var" / "plant.sqlite", tmp_path / "var" / "ring"
    ex = ["ip", "netns", "exec", ns]
    first = _sensor(ns, b, store, ring, zones)
    second = None
    try:
        _wait_capturing(first, ring, set())
        dumpcap_pid = int((ring / "dumpcap.pid").read_text().split()[0])
        subprocess.run([*ex, sys.executable, "-c", SENDER, a, str(caps[0]), "3000"], cwd=ROOT, check=True,
                       capture_output=True, timeout=120)
        time.sleep(0.5)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        deadline = time.monotonic() + 10      # dumpcap follows its parent (parent-death signal)
        while Path(f"/proc/{dumpcap_pid}").exists() and time.monotonic() < deadline:
            try:
                if "Z" in Path(f"/proc/{dumpcap_pid}/stat").read_text().split()[2]:
                    break
            except OSError:
                break
            time.sleep(0.1)
        assert not Path(f"/proc/{dumpcap_pid}/cmdline").exists() or \
            not Path(f"/proc/{dumpcap_pid}/cmdline").read_bytes(), "dumpcap outlived the killed sensor"
        before = {p.name for p in ring.glob("*.pcapng")}
        second = _sensor(ns, b, store, ring, zones)
        _wait_capturing(second, ring, before)
        subprocess.run([*ex, sys.executable, "-c", SENDER, a, str(caps[1]), "3000"], cwd=ROOT, check=True,
                       capture_output=True, timeout=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _q(
                store, "SELECT 1 FROM breaches WHERE device = ? AND model = ?", (ATTACKER[1], "ics.reprogram")):
            time.sleep(0.2)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        rc = second.wait(60) if second is not None else None
    log = second.stderr.read()
    assert rc == 0, log
    assert _q(store, "PRAGMA integrity_check") == [("ok",)]
    assert sum(n for (n,) in _q(store, "SELECT packets FROM captures")) == len(recs), log
    dup = _q(store, "SELECT model, device, first_ts FROM breaches GROUP BY 1, 2, 3 HAVING COUNT(*) > 1")
    assert dup == []
