"""The sensor's ring directory (issue 17.7-17.9): a full ring disk is detected while capturing and
at start, said in one complete line with the real number of packets lost (dumpcap's count minus
the packets tshark finds in the ring), and shown by the status line; an unwritable ring directory
or one owned by another user is refused with one line naming it; dumpcap's own multi-line
messages come out whole."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from plantwatch.core.capture import dumpcap
from plantwatch.core.pipeline.sensor import Sensor, SensorConfig

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
PORT = 39517


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


@pytest.fixture
def sensor_log():
    h = _Lines()
    lg = logging.getLogger("plantwatch.sensor")
    lg.addHandler(h)
    old = lg.level
    lg.setLevel(logging.INFO)
    yield h.lines
    lg.removeHandler(h)
    lg.setLevel(old)


@pytest.fixture
def small_fs(tmp_path: Path):
    if not IS_ROOT or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "ringfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _tshark_count(files: list[Path]) -> int:
    n = 0
    for p in files:
        out = subprocess.run(["tshark", "-n", "-r", str(p), "-T", "fields", "-e", "frame.number"],
                             capture_output=True, text=True, timeout=120)
        n += len(out.stdout.split())
    return n


@pytest.mark.skipif(dumpcap.dumpcap_path() is None or shutil.which("tshark") is None,
                    reason="needs dumpcap and tshark")
def test_full_ring_disk_is_reported_with_the_real_loss(tmp_path: Path, small_fs: Path,
                                                       sensor_log: list[str]) -> None:
    ring = small_fs / "ring"
    cap = dumpcap.Dumpcap("lo", ring, ring_size_mb=1.0, ring_files=4,
                          capture_filter=f"udp port {PORT}")
    sensor = Sensor(tmp_path / "s.sqlite", ring, capture=cap,
                    config=SensorConfig(poll_s=0.05, report_s=0.5, chunk_packets=256))
    rc: list[int] = []
    t = threading.Thread(target=lambda: rc.append(sensor.run()), daemon=True)
    t.start()
    for _ in range(100):  # dumpcap is capturing once its first ring file exists
        if list(ring.glob("*.pcapng")):
            break
        time.sleep(0.1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    deadline = time.monotonic() + 60
    sent = 0
    while t.is_alive() and not sensor.status.ring_full and time.monotonic() < deadline:
        for _ in range(50):
            s.sendto(b"x" * 1000, ("127.0.0.1", PORT))
            sent += 1
        time.sleep(0.005)
    for _ in range(100):  # more packets after the disk is full: lost, and counted
        s.sendto(b"y" * 1000, ("127.0.0.1", PORT))
    time.sleep(1.0)
    sensor.stop()
    t.join(60)
    assert not t.is_alive()
    assert sensor.status.ring_full, sensor_log
    full = [ln for ln in sensor_log if "the ring disk is full" in ln]
    assert full, sensor_log
    for ln in full:  # whole sentences, each one line
        assert "\n" not in ln and ln.rstrip().endswith((")", "directory"))
    stats = cap.stats()
    written = _tshark_count(sorted(ring.glob("*.pcapng")))
    seen = max(stats.captured, stats.received or 0)
    assert seen > written  # packets were really lost before the ring
    assert sensor.status.ring_lost == seen - written
    status = [ln for ln in sensor_log if "status:" in ln]
    assert any("ring disk FULL" in ln for ln in status), status
    # restarted on the still-full disk: refused at once, in one line naming the directory
    again = Sensor(tmp_path / "s.sqlite", ring, capture=dumpcap.Dumpcap(
        "lo", ring, ring_size_mb=1.0, ring_files=4, capture_filter=f"udp port {PORT}"))
    assert again.run() == 1
    assert again.status.message.startswith(f"the ring disk is full: {ring} has ")
    assert "\n" not in again.status.message


def test_dumpcap_disk_full_message_is_one_whole_line() -> None:
    text = ('Capturing on \'Loopback: lo\'\nFile: /r/x_00001.pcapng\n\rPackets: 11 dumpcap: Not all the '
            'packets could be written to the file to which the capture was being saved\n'
            '("/r/x_00001.pcapng") because there is no space left on the file system\n'
            'on which that file resides.\nYou will need to free up space on that file system or '
            'put the capture file on a different file system.\n\rPackets: 71 \rPackets captured: 71\n'
            "Packets received/dropped on interface 'Loopback: lo': 71/1 (pcap:0/dumpcap:1/flushed:0/ps_ifdrop:0) (98.6%)\n")
    assert dumpcap.explain("lo", "dumpcap", text) == (
        'the ring disk is full: Not all the packets could be written to the file to which the '
        'capture was being saved ("/r/x_00001.pcapng") because there is no space left on the file '
        'system on which that file resides. You will need to free up space on that file system or '
        'put the capture file on a different file system.')


def test_unwritable_ring_file_names_the_path_not_capture_rights() -> None:
    text = ('Capturing on \'lo\'\ndumpcap: The file to which the capture would be saved '
            '("/srv/ring/pw-1.pcapng") could not be opened: Permission denied.\n')
    msg = dumpcap.explain("lo", "/usr/bin/dumpcap", text)
    assert msg.startswith("dumpcap cannot create /srv/ring/pw-1.pcapng: Permission denied")
    assert "wireshark group" not in msg


@pytest.mark.skipif(not IS_ROOT, reason="needs root to give a directory to another user")
def test_ring_directory_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "theirs"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)
    with pytest.raises(dumpcap.CaptureSetupError) as e:
        dumpcap.secure_dir(d)
    assert str(e.value).startswith(f"{d}: owned by ") and "uid 65534" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.skipif(IS_ROOT, reason="root may write anywhere")
def test_ring_directory_this_user_may_not_write_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir(mode=0o500)
    try:
        with pytest.raises(dumpcap.CaptureSetupError, match=f"^{d}: this user may not write"):
            dumpcap.secure_dir(d)
        with pytest.raises(dumpcap.CaptureSetupError, match=f"^{d / 'sub'}: this user may not create"):
            dumpcap.secure_dir(d / "sub")
    finally:
        d.chmod(0o700)


@pytest.mark.skipif(not IS_ROOT or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to try as another user")
def test_ring_directory_another_user_may_not_write_is_named(tmp_path: Path) -> None:
    import sys
    import tempfile

    base = Path(tempfile.mkdtemp(dir="/tmp"))  # reachable by nobody, unlike pytest's tmp_path
    base.chmod(0o755)
    d = base / "ro"
    d.mkdir(mode=0o500)
    os.chown(d, 65534, 65534)
    code = ("from plantwatch.core.capture.dumpcap import secure_dir, CaptureSetupError\n"
            f"try:\n secure_dir({str(d)!r})\nexcept CaptureSetupError as e:\n print(e)\n")
    try:
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                             timeout=60)
    finally:
        shutil.rmtree(base)
    if "Permission denied" in out.stderr and "python" in out.stderr.lower() or "No module" in out.stderr:
        pytest.skip("the venv is not readable by nobody")
    assert out.stdout == f"{d}: this user may not write to this directory (mode 0500); chmod u+rwx {d}\n", \
        out.stdout + out.stderr


def test_ring_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(dumpcap.CaptureSetupError, match="exists and is not a directory"):
        dumpcap.secure_dir(f)


def test_ring_disk_without_room_for_one_file_is_refused(tmp_path: Path) -> None:
    free = dumpcap.free_bytes(tmp_path)
    with pytest.raises(dumpcap.CaptureSetupError, match=f"^the ring disk is full: {tmp_path} has "):
        dumpcap.check_ring_space(tmp_path, free // 1000 + 1000)
    dumpcap.check_ring_space(tmp_path, 1)
