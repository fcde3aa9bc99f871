"""dumpcap, headless: checks before capturing, a ring buffer of pcapng files, drop counters, stop.

`check_capture(iface)` answers "can this user capture on this interface?" with one line that says
what to do (install, permission, no such interface, interface down); it asks dumpcap itself
(`dumpcap -L -i IFACE` opens the device the way a capture does). `Dumpcap` runs
`dumpcap -i IFACE -b filesize:K -b files:N -w DIR/PREFIX.pcapng` with a umask of 077 (ring files
0600 in a 0700 directory), reads its stderr for the running packet count and the end-of-capture
statistics ("Packets received/dropped on interface ..."), and keeps its pid in DIR/dumpcap.pid so
a sensor restarted after a crash stops the dumpcap it had started instead of capturing twice.
Nothing here listens on a network port.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PID_FILE = "dumpcap.pid"
_PR_SET_PDEATHSIG = 1
_PACKETS = re.compile(rb"Packets(?: captured)?: (\d+)")
_FINAL = re.compile(r"Packets received/dropped on interface '([^']*)': (\d+)/(\d+) "
                    r"\(pcap:(\d+)/dumpcap:(\d+)/flushed:(\d+)/ps_ifdrop:(\d+)\)")


class CaptureSetupError(Exception):
    """Capture cannot start or stopped; str() is one line telling the user what to do."""


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """dumpcap's counters. `received`/`dropped` come at the end of a capture (None before)."""
    captured: int = 0                 # packets written (running count from dumpcap)
    received: int | None = None
    dropped: int | None = None        # pcap + dumpcap + flushed drops
    ifdrop: int | None = None         # dropped by the interface / driver (ps_ifdrop)


def dumpcap_path() -> str | None:
    return shutil.which("dumpcap") or next(
        (p for p in ("/usr/bin/dumpcap", "/usr/sbin/dumpcap") if os.access(p, os.X_OK)), None)


def permission_help(dumpcap: str) -> str:
    return ("this user may not capture packets: add it to the wireshark group "
            "(sudo usermod -aG wireshark USER, then log in again) or give dumpcap the capability "
            f"(sudo setcap cap_net_raw,cap_net_admin=eip {dumpcap}); do not run plantwatch as root")


_RUNNING_COUNT = re.compile(r"Packets(?: captured)?: \d+ ?")
_SAVE_FILE = re.compile(r'\("([^"]+)"\) could not be opened: ([^.\n]+)')
DISK_FULL = "the ring disk is full"


def one_line(text: str) -> str:
    """dumpcap's message as one line: its sentences span several lines and share them with the
    running packet count (written after a carriage return)."""
    text = _RUNNING_COUNT.sub("\n", text.replace("\r", "\n"))
    lines = [ln.strip().removeprefix("dumpcap: ") for ln in text.splitlines()]
    lines = [ln for ln in lines
             if ln and not ln.startswith(("Capturing on", "File:", "Packets received/dropped"))]
    return " ".join(lines) or "no reason given"


def explain(iface: str, dumpcap: str, text: str) -> str:
    """One line from dumpcap's error output."""
    m = _SAVE_FILE.search(text)
    if m:  # the ring file, not the interface: say which path
        return (f"dumpcap cannot create {m[1]}: {m[2].strip()} (the ring directory must be "
                f"writable by the user dumpcap runs as)")
    if "no space left" in text.lower():
        return f"{DISK_FULL}: {one_line(text)}"
    if "ermission" in text or "not permitted" in text:
        return permission_help(dumpcap)
    if "No such device" in text or "doesn't exist" in text or "no such device" in text.lower():
        return f"no interface {iface!r} (list them with: ip link)"
    if "not up" in text or "is down" in text:
        return f"interface {iface!r} is down (sudo ip link set {iface} up)"
    return one_line(text)


def free_bytes(path: str | Path) -> int:
    """Bytes an unprivileged writer may still use on the file system holding `path`."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def check_ring_space(ring: Path, file_kb: int) -> None:
    """Refuse to start dumpcap where not even one ring file fits (one line naming the path)."""
    free = free_bytes(ring)
    if free < file_kb * 1000:
        raise CaptureSetupError(f"{DISK_FULL}: {ring} has {free // 1000} kB free, one ring file "
                                f"takes {file_kb} kB; free space there or choose another ring directory")


def check_capture(iface: str, dumpcap: str | None = None, timeout: float = 20.0) -> str:
    """The dumpcap to use for `iface`, or CaptureSetupError saying how to fix the problem."""
    dumpcap = dumpcap or dumpcap_path()
    if dumpcap is None:
        raise CaptureSetupError("dumpcap is not installed (it comes with Wireshark: "
                                "sudo apt-get install wireshark-common, or tshark)")
    if not re.fullmatch(r"[\w.:@-]{1,64}", iface):
        raise CaptureSetupError(f"{iface!r} is not an interface name")
    try:
        out = subprocess.run([dumpcap, "-L", "-i", iface], capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CaptureSetupError(f"cannot run {dumpcap}: {e}") from None
    if out.returncode != 0:
        raise CaptureSetupError(explain(iface, dumpcap, (out.stderr or "") + (out.stdout or "")))
    flags = Path(f"/sys/class/net/{iface}/flags")
    with contextlib.suppress(OSError, ValueError):
        if not int(flags.read_text().strip(), 16) & 0x1:
            raise CaptureSetupError(f"interface {iface!r} is down (sudo ip link set {iface} up)")
    return dumpcap


def secure_dir(path: str | Path) -> Path:
    """Create `path` (0700) if needed; refuse, in one line naming it, a directory this user cannot
    create or write to, one owned by another user, or one others may write to."""
    p = Path(path)
    try:
        p.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = p.stat()
    except FileExistsError:
        raise CaptureSetupError(f"{p}: exists and is not a directory") from None
    except PermissionError:
        raise CaptureSetupError(f"{p}: this user may not create or reach this directory "
                                "(permission denied)") from None
    except OSError as e:
        raise CaptureSetupError(f"{p}: cannot create this directory ({e.strerror or e})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise CaptureSetupError(f"{p}: exists and is not a directory")
    if st.st_uid != os.geteuid():
        raise CaptureSetupError(f"{p}: owned by {_user(st.st_uid)}, not by this user "
                                f"({_user(os.geteuid())}); use a directory of your own")
    if st.st_mode & 0o022:
        raise CaptureSetupError(f"{p}: other users may write to this directory; "
                                f"use a private one (chmod 700 {p})")
    if not os.access(p, os.W_OK | os.X_OK):
        raise CaptureSetupError(f"{p}: this user may not write to this directory "
                                f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod u+rwx {p}")
    return p


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _child_setup() -> None:
    os.umask(0o077)
    os.setsid()  # our own process group: a Ctrl-C on the terminal reaches the sensor, not dumpcap
    with contextlib.suppress(Exception):  # Linux: dumpcap dies with the sensor (kill -9 too)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Dumpcap:
    """One dumpcap process writing a ring buffer into `ring_dir`."""

    def __init__(self, iface: str, ring_dir: str | Path, *, ring_size_mb: float = 100.0,
                 ring_files: int = 10, capture_filter: str | None = None,
                 dumpcap: str | None = None, prefix: str | None = None) -> None:
        self.iface = iface
        self.dir = Path(ring_dir)
        self.size_kb = max(1, int(ring_size_mb * 1000))
        self.files = max(2, int(ring_files))
        self.filter = capture_filter
        self.dumpcap = dumpcap
        self.prefix = prefix or f"pw-{int(time.time() * 1000)}"
        self.proc: subprocess.Popen | None = None
        self._captured = 0
        self._err = bytearray()
        self._reader: threading.Thread | None = None
        self._final: CaptureStats | None = None

    @property
    def pattern(self) -> Path:
        return self.dir / f"{self.prefix}.pcapng"

    def command(self) -> list[str]:
        cmd = [self.dumpcap or "dumpcap", "-i", self.iface, "-b", f"filesize:{self.size_kb}",
               "-b", f"files:{self.files}", "-w", str(self.pattern)]
        if self.filter:
            cmd += ["-f", self.filter]
        return cmd

    def start(self) -> None:
        self.dumpcap = check_capture(self.iface, self.dumpcap)
        secure_dir(self.dir)
        check_ring_space(self.dir, self.size_kb)
        stop_stale(self.dir)
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=_child_setup)
        pid_file = self.dir / PID_FILE
        fd = os.open(pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{self.proc.pid}\n{self.pattern}\n")
        self._reader = threading.Thread(target=self._read_stderr, name="dumpcap-stderr", daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read1(4096), b""):
            self._err += chunk
            counts = _PACKETS.findall(chunk)
            if counts:
                self._captured = max(self._captured, int(counts[-1]))
            if len(self._err) > 1 << 16:
                del self._err[:-(1 << 15)]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stats(self) -> CaptureStats:
        return self._final or CaptureStats(captured=self._captured)

    def error(self) -> str | None:
        """Why dumpcap stopped by itself (one line), None while it runs."""
        if self.proc is None or self.proc.poll() is None:
            return None
        if self._reader is not None:
            self._reader.join(2)
        text = self._err.decode("utf-8", "replace")
        if one_line(text) == "no reason given":
            return f"dumpcap exited with status {self.proc.returncode}"
        return explain(self.iface, self.dumpcap or "dumpcap", text)

    def stop(self, timeout: float = 10.0) -> CaptureStats:
        """Ask dumpcap to finish (SIGTERM: it closes the file cleanly), wait, read its final
        statistics."""
        if self.proc is None:
            return CaptureStats()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        with contextlib.suppress(FileNotFoundError):
            (self.dir / PID_FILE).unlink()
        self._final = parse_final(self._err.decode("utf-8", "replace"), self._captured)
        return self._final


def parse_final(text: str, captured: int = 0) -> CaptureStats:
    """dumpcap's end-of-capture line: received/dropped and the kinds of drops."""
    found = list(_FINAL.finditer(text))
    m = found[-1] if found else None
    caps = [int(x) for x in re.findall(r"Packets captured: (\d+)", text)]
    captured = max([captured, *caps])
    if m is None:
        return CaptureStats(captured=captured)
    recv, dropped, pcap, dc, flushed, ifdrop = (int(m[i]) for i in range(2, 8))
    return CaptureStats(captured=captured, received=recv, dropped=pcap + dc + flushed, ifdrop=ifdrop)


def stop_stale(ring_dir: Path) -> int | None:
    """Stop the dumpcap a previous sensor started on this ring (it outlived a kill -9 when
    dumpcap has file capabilities, which clear the parent-death signal). Only a dumpcap whose
    command line writes into this directory is touched. Returns its pid, None when there was none."""
    pid_file = ring_dir / PID_FILE
    try:
        pid_s, pattern = (pid_file.read_text().splitlines() + ["", ""])[:2]
        pid = int(pid_s)
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        cmdline = []
    stale = bool(cmdline) and Path(cmdline[0].decode(errors="replace")).name == "dumpcap" \
        and pattern.encode() in cmdline
    if stale:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    return pid if stale else None
