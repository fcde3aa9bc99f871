"""Sending breaches and incidents to a SIEM as syslog (RFC 5424) over UDP or TCP.

`SyslogTarget.parse("udp://host:514")` checks the address (one-line `SiemError`); a `Forwarder`
remembers what the store held before (`prime`) and, at each `forward`, sends the breaches that
are new since and the incidents that are new or grew (more breaches), in packet-time order.
UDP: one datagram per message. TCP: octet-counted frames (RFC 6587, "LEN SP MSG"), reconnected
once on a broken connection. A send that fails is logged and queued for a retry, never fatal:
the store is the record, the feed is best effort (at least once across a sensor restart: what a
redone run writes again is sent again; what is still queued when a process ends is lost, and said).
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from plantwatch.core.store.database import Store
from plantwatch.core.views import report
from plantwatch.core.views.console.common import has_table
from plantwatch.core.views.siem import FORMATS, MAX_BYTES, syslog_message

log = logging.getLogger(__name__)


class SiemError(Exception):
    """The syslog target is unusable; str() is one line."""


@dataclass(frozen=True, slots=True)
class SyslogTarget:
    transport: str          # udp | tcp
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> SyslogTarget:
        u = urlsplit(url.strip())
        if u.scheme not in ("udp", "tcp") or not u.hostname:
            raise SiemError(f"--syslog {url}: give udp://HOST:PORT or tcp://HOST:PORT")
        try:
            port = u.port or 514
        except ValueError:
            raise SiemError(f"--syslog {url}: the port is not a number from 1 to 65535") from None
        return cls(u.scheme, u.hostname, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"


class SyslogSender:
    """A connected socket to the target; `check()` fails early on a bad host or a TCP refusal.

    Messages go through a bounded queue: when the target stops answering, what could not be sent
    waits (up to `queue_max` messages, the oldest dropped beyond) and is retried after
    `backoff_s`, so a SIEM that is down costs the pipeline one connection timeout per backoff,
    not one per message."""

    def __init__(self, target: SyslogTarget, timeout: float = 5.0, backoff_s: float = 30.0,
                 queue_max: int = 10_000) -> None:
        self.target = target
        self.timeout = timeout
        self.backoff_s = backoff_s
        self._sock: socket.socket | None = None
        self._queue: deque[bytes] = deque()
        self._queue_max = queue_max
        self._retry_at = 0.0
        self.sent = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _connect(self) -> socket.socket:
        t = self.target
        try:
            infos = socket.getaddrinfo(t.host, t.port, type=socket.SOCK_DGRAM if t.transport == "udp"
                                       else socket.SOCK_STREAM)
        except OSError as e:
            raise SiemError(f"--syslog {t}: cannot resolve {t.host} ({e.strerror or e})") from None
        family, stype, proto, _, addr = infos[0]
        s = socket.socket(family, stype, proto)
        s.settimeout(self.timeout)
        try:
            s.connect(addr)
        except OSError as e:
            s.close()
            raise SiemError(f"--syslog {t}: cannot connect ({e.strerror or e})") from None
        return s

    def check(self) -> None:
        if self._sock is None:
            self._sock = self._connect()

    def _send_one(self, message: bytes) -> bool:
        frame = message if self.target.transport == "udp" else str(len(message)).encode() + b" " + message
        for attempt in (0, 1):     # a broken connection is reopened once
            try:
                if self._sock is None:
                    self._sock = self._connect()
                self._sock.sendall(frame)
                return True
            except (OSError, SiemError) as e:
                self.close()
                if attempt:
                    log.warning("syslog %s: not sent, retried in %.0f s (%s)", self.target, self.backoff_s,
                                str(e).splitlines()[0])
        return False

    def send(self, message: bytes) -> None:
        """Queue `message` and send what the queue holds (unless backing off)."""
        if len(self._queue) >= self._queue_max:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(message)
        self.flush()

    def flush(self, force: bool = False) -> bool:
        """Send the queue in order; False when some is left (the target did not take it)."""
        if self._queue and not force and time.monotonic() < self._retry_at:
            return False
        while self._queue:
            if not self._send_one(self._queue[0]):
                self._retry_at = time.monotonic() + self.backoff_s
                return False
            self._queue.popleft()
            self.sent += 1
        return True

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


@dataclass
class Forwarder:
    """Sends what is new in a store; `fmt` is cef or json."""

    sender: SyslogSender
    fmt: str = "cef"
    hostname: str = field(default_factory=socket.gethostname)
    max_bytes: int = MAX_BYTES
    _breaches: set[int] = field(default_factory=set)
    _incidents: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise SiemError(f"--syslog-format {self.fmt}: give one of {', '.join(FORMATS)}")

    def _known(self, store: Store) -> tuple[set[int], dict[int, int]]:
        # a breach the analyst accepted as normal or a rule allows is not news for the SIEM
        covered = (" AND breach_id NOT IN (SELECT breach_id FROM breach_triage WHERE site = ?1"
                   " AND disposition IN ('accepted', 'suppressed'))") if has_table(store, "breach_triage") else ""
        site = (store.site,)
        b = {int(r[0]) for r in store.execute(f"SELECT breach_id FROM breaches WHERE site = ?1{covered}", site)}
        i = {int(r[0]): int(r[1] or 0) for r in store.execute(
            "SELECT incident_id, breaches FROM incidents WHERE site = ?", site)}
        return b, i

    def prime(self, store: Store) -> None:
        """What the store holds now counts as sent."""
        self._breaches, self._incidents = self._known(store)

    def forward(self, store: Store) -> tuple[int, int]:
        """Send the new breaches, then the new or grown incidents: (breaches, incidents) handed
        to the sender (see `sender.pending` for what it could not deliver yet)."""
        from plantwatch import __version__

        b_ids, i_counts = self._known(store)
        new_b = b_ids - self._breaches
        new_i = {i for i, n in i_counts.items() if self._incidents.get(i) != n}
        nb = ni = 0
        self.sender.flush()      # what waits from before goes first
        if new_b:
            for b in report.breaches(store):
                if b["breach_id"] in new_b:
                    self.sender.send(syslog_message("breach", b, self.fmt, hostname=self.hostname,
                                                    version=__version__, max_bytes=self.max_bytes))
                    nb += 1
        if new_i:
            for inc in sorted(report.incidents(store), key=lambda i: (i["first_seen"] or "", i["incident_id"])):
                if inc["incident_id"] in new_i:
                    self.sender.send(syslog_message("incident", inc, self.fmt, hostname=self.hostname,
                                                    version=__version__, max_bytes=self.max_bytes))
                    ni += 1
        self._breaches |= new_b
        self._incidents.update(i_counts)
        return nb, ni


def make_forwarder(url: str, fmt: str) -> Forwarder:
    """A checked forwarder for `--syslog URL --syslog-format FMT` (raises SiemError)."""
    sender = SyslogSender(SyslogTarget.parse(url))
    fwd = Forwarder(sender, fmt)
    sender.check()
    return fwd
