"""A real rsyslogd (Debian's package) on loopback for the SIEM tests: its own config in a temp
dir, imudp and imtcp on free ports, every message written by omfile as one JSON line of the
fields rsyslog parsed (so the tests see what a SIEM behind it would see)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def rsyslogd() -> str | None:
    return shutil.which("rsyslogd") or next(
        (p for p in ("/usr/sbin/rsyslogd", "/sbin/rsyslogd") if Path(p).exists()), None)


needs_rsyslog = pytest.mark.skipif(
    rsyslogd() is None, reason="rsyslogd is not installed (Debian: apt-get install rsyslog; make setup does it as root)")

_FIELDS = ("timereported:::date-rfc3339", "hostname", "app-name", "procid", "msgid", "structured-data",
           "syslogfacility", "syslogseverity", "msg")
_CONF = """global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
input(type="imudp" port="{udp}" address="127.0.0.1")
input(type="imtcp" port="{tcp}" address="127.0.0.1")
template(name="asjson" type="string" string="{{{template}}}\\n")
*.* action(type="omfile" file="{out}" template="asjson")
"""


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Rsyslog:
    udp: int
    tcp: int
    out: Path

    def records(self) -> list[dict[str, str]]:
        if not self.out.exists():
            return []
        lines = self.out.read_text(encoding="utf-8", errors="replace").splitlines()
        return [r for r in map(json.loads, lines) if r["msgid"] != "probe"]

    def wait_for(self, predicate, timeout: float = 60.0) -> list[dict[str, str]]:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while True:
            recs = self.records()
            if predicate(recs) or time.monotonic() > deadline:
                return recs
            time.sleep(0.1)


@contextlib.contextmanager
def rsyslog(tmp: Path) -> Iterator[Rsyslog]:
    d = tmp / "rsyslog"
    d.mkdir()
    udp, tcp = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    out = d / "received.jsonl"
    template = ",".join(f'\\"{f.split(":")[0]}\\":\\"%{f}:::json%\\"' if ":" not in f
                        else f'\\"{f.split(":")[0]}\\":\\"%{f}%\\"' for f in _FIELDS)
    conf = d / "rsyslog.conf"
    conf.write_text(_CONF.format(dir=d, udp=udp, tcp=tcp, out=out, template=template))
    log = open(d / "rsyslogd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([rsyslogd(), "-n", "-f", str(conf), "-i", str(d / "rsyslogd.pid")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        probe = b"<14>1 2026-01-01T00:00:00Z test pw - probe - ready"
        while True:   # up when a UDP probe comes out of omfile and the TCP port accepts
            assert proc.poll() is None, (d / "rsyslogd.log").read_text(errors="replace")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(probe, ("127.0.0.1", udp))
            if out.exists() and b"probe" in out.read_bytes():
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", tcp), timeout=1):
                    break
            assert time.monotonic() < deadline, "rsyslogd did not start: " + (d / "rsyslogd.log").read_text(errors="replace")
            time.sleep(0.1)
        yield Rsyslog(udp, tcp, out)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
