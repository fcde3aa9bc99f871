"""A whole TCP conversation as (ts_ns, frame) records, and a simulated host's counters."""

from __future__ import annotations

from dataclasses import dataclass, field

from plantwatch.core.synth.frames.wire import (
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    Addr,
    _ip,
    _mac,
    tcp_frame,
)

# --------------------------------------------------------------------------- TCP conversations


class HostCounters:
    """A simulated host's ephemeral source ports and IPv4 identification field, advancing as a
    real stack's do, starting from values derived from `seed` (deterministic)."""

    __slots__ = ("_port", "_ipid")

    def __init__(self, seed: int, port_span: int = 12000) -> None:
        self._port = 49152 + (seed * 97) % port_span
        self._ipid = (seed * 7919) & 0xFFFF

    def port(self) -> int:
        self._port = 49152 if self._port >= 65000 else self._port + 1
        return self._port

    def ipid(self) -> int:
        self._ipid = (self._ipid + 1) & 0xFFFF
        return self._ipid


@dataclass(frozen=True, slots=True)
class Leg:
    """How frames sent by one side of a conversation look on the wire: its own MAC and IP, the next
    hop's MAC (the peer, or a router), the peer's IP, the VLAN the frame is captured on, its TTL."""

    src_mac: bytes
    dst_mac: bytes
    src_ip: bytes
    dst_ip: bytes
    vlan: int | None = None
    ttl: int = 128

    @classmethod
    def of(cls, src_mac: Addr, dst_mac: Addr, src_ip: Addr, dst_ip: Addr, vlan: int | None = None,
           ttl: int = 128) -> Leg:
        return cls(_mac(src_mac), _mac(dst_mac), _ip(src_ip), _ip(dst_ip), vlan, ttl)


SYN_OPTIONS = b"\x02\x04\x05\xb4\x01\x01\x04\x02"  # MSS 1460, NOP, NOP, SACK permitted

Record = tuple[int, bytes]


@dataclass(slots=True)
class TcpSession:
    """One TCP conversation; every method returns a list of (ts_ns, frame) records.

    `client` and `server` are the Legs of frames sent by each side. Sequence numbers, IP ids and
    acknowledgements follow the bytes actually sent, so tshark sees no lost or unseen segment.
    """

    client: Leg
    server: Leg
    sport: int
    dport: int
    isn_client: int = 1000
    isn_server: int = 5000
    win_client: int = 64240
    win_server: int = 8192
    mss: int = 1460
    ip_id_client: int = 1
    ip_id_server: int = 1
    c_seq: int = field(init=False)
    s_seq: int = field(init=False)

    def __post_init__(self) -> None:
        self.c_seq = self.isn_client & 0xFFFFFFFF
        self.s_seq = self.isn_server & 0xFFFFFFFF

    def _frame(self, from_client: bool, flags: int, payload: bytes = b"", options: bytes = b"",
               seq: int | None = None, ack: int | None = None) -> bytes:
        if from_client:
            leg, sp, dp, win = self.client, self.sport, self.dport, self.win_client
            s = self.c_seq if seq is None else seq
            a = self.s_seq if ack is None else ack
            self.ip_id_client = (self.ip_id_client + 1) & 0xFFFF
            ident = self.ip_id_client
        else:
            leg, sp, dp, win = self.server, self.dport, self.sport, self.win_server
            s = self.s_seq if seq is None else seq
            a = self.c_seq if ack is None else ack
            self.ip_id_server = (self.ip_id_server + 1) & 0xFFFF
            ident = self.ip_id_server
        return tcp_frame(leg.src_mac, leg.dst_mac, leg.src_ip, leg.dst_ip, sp, dp, payload, seq=s,
                         ack=a, flags=flags, win=win, options=options, ip_id=ident, ttl=leg.ttl,
                         vlan=leg.vlan)

    def syn(self, ts: int) -> list[Record]:
        return [(ts, self._frame(True, TCP_SYN, options=SYN_OPTIONS, ack=0))]

    def handshake(self, ts: int, rtt: int = 400_000) -> list[Record]:
        """SYN, SYN/ACK at ts + rtt/2, ACK at ts + rtt."""
        out = self.syn(ts)
        self.c_seq = (self.c_seq + 1) & 0xFFFFFFFF
        out.append((ts + rtt // 2, self._frame(False, TCP_SYN | TCP_ACK, options=SYN_OPTIONS)))
        self.s_seq = (self.s_seq + 1) & 0xFFFFFFFF
        out.append((ts + rtt, self._frame(True, TCP_ACK)))
        return out

    def refused(self, ts: int, rtt: int = 400_000) -> list[Record]:
        """SYN answered by RST/ACK (closed port)."""
        out = self.syn(ts)
        out.append((ts + rtt // 2, self._frame(False, TCP_RST | TCP_ACK, seq=0,
                                               ack=(self.c_seq + 1) & 0xFFFFFFFF)))
        return out

    def unanswered(self, ts: int, retries: int = 2, first_rto: int = 1_000_000_000) -> list[Record]:
        """SYN and its retransmissions (RTO doubling), never answered."""
        out: list[Record] = []
        t, rto = ts, first_rto
        for _ in range(retries + 1):
            out += self.syn(t)
            t += rto
            rto *= 2
        return out

    def send(self, ts: int, payload: bytes, from_client: bool = True, gap: int = 20_000) -> list[Record]:
        """Data from one side, cut into MSS-sized PSH/ACK segments `gap` ns apart; the receiver
        acknowledges every second segment so the window never fills."""
        out: list[Record] = []
        t = ts
        for n, i in enumerate(range(0, max(len(payload), 1), self.mss), start=1):
            chunk = payload[i : i + self.mss]
            out.append((t, self._frame(from_client, TCP_PSH | TCP_ACK, chunk)))
            if from_client:
                self.c_seq = (self.c_seq + len(chunk)) & 0xFFFFFFFF
            else:
                self.s_seq = (self.s_seq + len(chunk)) & 0xFFFFFFFF
            t += gap
            if n % 2 == 0 and i + self.mss < len(payload):
                out.append((t, self._frame(not from_client, TCP_ACK)))
                t += gap
        return out

    def ack(self, ts: int, from_client: bool = True) -> list[Record]:
        return [(ts, self._frame(from_client, TCP_ACK))]

    def exchange(self, ts: int, request: bytes, response: bytes, rtt: int = 2_000_000,
                 ack_delay: int = 200_000) -> list[Record]:
        """Client request, server response `rtt` after the request's last segment, client ACK
        `ack_delay` after the response's last segment."""
        out = self.send(ts, request, True)
        if response:
            out += self.send(out[-1][0] + rtt, response, False)
            out += self.ack(out[-1][0] + ack_delay, True)
        return out

    def close(self, ts: int, from_client: bool = True, rtt: int = 400_000) -> list[Record]:
        """FIN/ACK from one side, FIN/ACK back, final ACK."""
        out = [(ts, self._frame(from_client, TCP_FIN | TCP_ACK))]
        self._advance(from_client, 1)
        out.append((ts + rtt // 2, self._frame(not from_client, TCP_FIN | TCP_ACK)))
        self._advance(not from_client, 1)
        out.append((ts + rtt, self._frame(from_client, TCP_ACK)))
        return out

    def reset(self, ts: int, from_client: bool = True) -> list[Record]:
        return [(ts, self._frame(from_client, TCP_RST | TCP_ACK))]

    def _advance(self, from_client: bool, n: int) -> None:
        if from_client:
            self.c_seq = (self.c_seq + n) & 0xFFFFFFFF
        else:
            self.s_seq = (self.s_seq + n) & 0xFFFFFFFF
