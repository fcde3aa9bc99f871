"""Builders for whole Ethernet frames and the application payloads they carry.

One module serves the tests, the benchmark and the demo generator. Every builder is a pure
function returning bytes (no randomness: identifiers, sequence numbers and times come from the
caller), and every checksum, length and CRC is correct so tshark decodes the output cleanly.

Conventions:
- Addresses are accepted as text ("10.0.0.1", "00:1b:1b:00:00:01", "fe80::1") or as packed
  bytes; packed bytes are used as given (the fast path for generators building millions of frames).
- Layer builders (`ipv4`, `tcp`, `udp` ...) return that layer with its payload appended; the
  `*_frame` functions stack Ethernet + IP + L4 in one call.
- Application builders return the L4 payload (`modbus(...)`, `s7_read_var(...)`, `tls_client_hello(...)`).
- `TcpSession` produces (ts_ns, frame) records for a whole TCP conversation with consistent
  sequence and acknowledgement numbers.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

# --------------------------------------------------------------------------- addresses

Addr = str | bytes

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
ETH_8021Q = 0x8100
ETH_8021AD = 0x88A8

BROADCAST_MAC = b"\xff" * 6

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58


@lru_cache(maxsize=65536)
def mac_bytes(mac: str) -> bytes:
    """'00:1b:1b:0a:0b:0c' (or with '-') to 6 bytes."""
    b = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(b) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return b


@lru_cache(maxsize=65536)
def ip_bytes(ip: str) -> bytes:
    """Dotted IPv4 or textual IPv6 to 4 or 16 bytes."""
    return ipaddress.ip_address(ip).packed


def _mac(a: Addr) -> bytes:
    return a if isinstance(a, bytes) else mac_bytes(a)


def _ip(a: Addr) -> bytes:
    return a if isinstance(a, bytes) else ip_bytes(a)


# --------------------------------------------------------------------------- checksums


def _ones_sum(*chunks: bytes) -> int:
    """Internet checksum of the concatenation of `chunks` (every chunk but the last of even length).

    Uses 2**16 == 1 (mod 0xFFFF): the one's-complement sum of 16-bit words equals the big integer
    value modulo 0xFFFF, so no per-word loop and no concatenation is needed.
    """
    total = 0
    for c in chunks:
        if len(c) & 1:
            total += int.from_bytes(c, "big") << 8
        else:
            total += int.from_bytes(c, "big")
    # A sum of -0 (0xFFFF) gives checksum 0x0000 as RFC 1624 prefers; udp() maps 0 to 0xFFFF.
    r = total % 0xFFFF
    return 0 if r == 0 else 0xFFFF - r


def inet_checksum(data: bytes) -> int:
    """RFC 1071 checksum of `data`."""
    return _ones_sum(data)


def _pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


# --------------------------------------------------------------------------- link layer


def ether(dst: Addr, src: Addr, ethertype: int, payload: bytes, *, vlan: int | None = None,
          vlan_inner: int | None = None, pcp: int = 0, pad: bool = True) -> bytes:
    """Ethernet II, optionally 802.1Q tagged (or QinQ: 802.1ad outer `vlan`, 802.1Q `vlan_inner`).

    Frames shorter than the 60-byte minimum (FCS excluded) are zero-padded as a switch would.
    """
    if vlan is None:
        hdr = _mac(dst) + _mac(src) + struct.pack("!H", ethertype)
    elif vlan_inner is None:
        hdr = _mac(dst) + _mac(src) + struct.pack("!HHH", ETH_8021Q, (pcp << 13) | vlan, ethertype)
    else:
        hdr = _mac(dst) + _mac(src) + struct.pack(
            "!HHHHH", ETH_8021AD, (pcp << 13) | vlan, ETH_8021Q, (pcp << 13) | vlan_inner, ethertype)
    n = len(hdr) + len(payload)
    if pad and n < 60:
        return hdr + payload + bytes(60 - n)
    return hdr + payload


def arp(op: int, sha: Addr, spa: Addr, tha: Addr, tpa: Addr) -> bytes:
    """ARP for IPv4 over Ethernet; op 1 request, 2 reply."""
    return struct.pack("!HHBBH", 1, ETH_IPV4, 6, 4, op) + _mac(sha) + _ip(spa) + _mac(tha) + _ip(tpa)


def arp_frame(op: int, src_mac: Addr, src_ip: Addr, target_ip: Addr, *, target_mac: Addr | None = None,
              vlan: int | None = None) -> bytes:
    """A request (op 1, broadcast) or reply (op 2, to `target_mac`)."""
    if op == 1:
        return ether(BROADCAST_MAC, src_mac, ETH_ARP, arp(1, src_mac, src_ip, bytes(6), target_ip), vlan=vlan)
    assert target_mac is not None
    return ether(target_mac, src_mac, ETH_ARP, arp(2, src_mac, src_ip, target_mac, target_ip), vlan=vlan)


# --------------------------------------------------------------------------- network layer


def ipv4(src: Addr, dst: Addr, proto: int, payload: bytes, *, ident: int = 0, ttl: int = 64,
         df: bool = True, tos: int = 0) -> bytes:
    s, d = _ip(src), _ip(dst)
    hdr = struct.pack("!BBHHHBBH", 0x45, tos, 20 + len(payload), ident & 0xFFFF,
                      0x4000 if df else 0, ttl, proto, 0) + s + d
    ck = _ones_sum(hdr)
    return hdr[:10] + struct.pack("!H", ck) + hdr[12:] + payload


def ipv6(src: Addr, dst: Addr, next_header: int, payload: bytes, *, hop_limit: int = 64,
         flow_label: int = 0, traffic_class: int = 0) -> bytes:
    return struct.pack("!IHBB", (6 << 28) | (traffic_class << 20) | flow_label, len(payload),
                       next_header, hop_limit) + _ip(src) + _ip(dst) + payload


def ip(src: Addr, dst: Addr, proto: int, payload: bytes, *, ident: int = 0, ttl: int = 64,
       df: bool = True) -> tuple[int, bytes]:
    """IPv4 or IPv6 by address size; returns (ethertype, packet)."""
    s, d = _ip(src), _ip(dst)
    if len(s) == 4:
        return ETH_IPV4, ipv4(s, d, proto, payload, ident=ident, ttl=ttl, df=df)
    return ETH_IPV6, ipv6(s, d, proto, payload, hop_limit=ttl)


# --------------------------------------------------------------------------- transport


def tcp(src: Addr, dst: Addr, sport: int, dport: int, payload: bytes = b"", *, seq: int = 0,
        ack: int = 0, flags: int = TCP_ACK, win: int = 64240, options: bytes = b"",
        urg: int = 0) -> bytes:
    """A TCP segment with its checksum over the IPv4/IPv6 pseudo-header (`src`/`dst` addresses)."""
    if len(options) % 4:
        options += b"\x00" * (4 - len(options) % 4)
    hlen = 20 + len(options)
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      (hlen // 4) << 4 | (flags >> 8 & 1), flags & 0xFF, win, 0, urg) + options
    s, d = _ip(src), _ip(dst)
    ck = _ones_sum(_pseudo(s, d, IPPROTO_TCP, hlen + len(payload)), hdr, payload)
    return hdr[:16] + struct.pack("!H", ck) + hdr[18:] + payload


def udp(src: Addr, dst: Addr, sport: int, dport: int, payload: bytes) -> bytes:
    n = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, n, 0)
    ck = _ones_sum(_pseudo(_ip(src), _ip(dst), IPPROTO_UDP, n), hdr, payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, n, ck) + payload


def icmp(icmp_type: int, code: int, rest: bytes) -> bytes:
    """ICMPv4 message: `rest` is everything after the checksum (4-byte header rest + data)."""
    ck = _ones_sum(struct.pack("!BBH", icmp_type, code, 0), rest)
    return struct.pack("!BBH", icmp_type, code, ck) + rest


def icmp_echo(ident: int, seq: int, data: bytes = b"abcdefghijklmnopqrstuvwabcdefghi", *,
              reply: bool = False) -> bytes:
    return icmp(0 if reply else 8, 0, struct.pack("!HH", ident, seq) + data)


def icmp_unreachable(code: int, offending_ip_packet: bytes) -> bytes:
    """Destination unreachable (3 host, 1 host... 3 port, 13 administratively prohibited), quoting
    the offending packet's IP header and the first 8 bytes of its payload."""
    ihl = (offending_ip_packet[0] & 0x0F) * 4
    return icmp(3, code, b"\x00\x00\x00\x00" + offending_ip_packet[: ihl + 8])


def icmpv6(src: Addr, dst: Addr, icmp_type: int, code: int, rest: bytes) -> bytes:
    n = 4 + len(rest)
    ck = _ones_sum(_pseudo(_ip(src), _ip(dst), IPPROTO_ICMPV6, n),
                   struct.pack("!BBH", icmp_type, code, 0), rest)
    return struct.pack("!BBH", icmp_type, code, ck) + rest


# --------------------------------------------------------------------------- whole frames


def tcp_frame(src_mac: Addr, dst_mac: Addr, src_ip: Addr, dst_ip: Addr, sport: int, dport: int,
              payload: bytes = b"", *, seq: int = 0, ack: int = 0, flags: int = TCP_ACK | TCP_PSH,
              win: int = 64240, options: bytes = b"", ip_id: int = 0, ttl: int = 64, df: bool = True,
              vlan: int | None = None, vlan_inner: int | None = None) -> bytes:
    seg = tcp(src_ip, dst_ip, sport, dport, payload, seq=seq, ack=ack, flags=flags, win=win,
              options=options)
    et, pkt = ip(src_ip, dst_ip, IPPROTO_TCP, seg, ident=ip_id, ttl=ttl, df=df)
    return ether(dst_mac, src_mac, et, pkt, vlan=vlan, vlan_inner=vlan_inner)


def udp_frame(src_mac: Addr, dst_mac: Addr, src_ip: Addr, dst_ip: Addr, sport: int, dport: int,
              payload: bytes, *, ip_id: int = 0, ttl: int = 64, df: bool = False,
              vlan: int | None = None, vlan_inner: int | None = None) -> bytes:
    et, pkt = ip(src_ip, dst_ip, IPPROTO_UDP, udp(src_ip, dst_ip, sport, dport, payload),
                 ident=ip_id, ttl=ttl, df=df)
    return ether(dst_mac, src_mac, et, pkt, vlan=vlan, vlan_inner=vlan_inner)


def icmp_frame(src_mac: Addr, dst_mac: Addr, src_ip: Addr, dst_ip: Addr, message: bytes, *,
               ip_id: int = 0, ttl: int = 64, vlan: int | None = None) -> bytes:
    """An ICMPv4 `message` (from icmp_echo / icmp_unreachable) in IPv4 and Ethernet."""
    return ether(dst_mac, src_mac, ETH_IPV4,
                 ipv4(src_ip, dst_ip, IPPROTO_ICMP, message, ident=ip_id, ttl=ttl, df=False), vlan=vlan)


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


# --------------------------------------------------------------------------- Modbus/TCP

MODBUS_PORT = 502


def modbus(trans: int, unit: int, pdu: bytes) -> bytes:
    """MBAP header + PDU (`pdu` starts with the function code)."""
    return struct.pack("!HHHB", trans, 0, len(pdu) + 1, unit) + pdu


def mb_read_req(fc: int, addr: int, count: int) -> bytes:
    """FC 1, 2, 3 or 4 request."""
    return struct.pack("!BHH", fc, addr, count)


def mb_read_bits_resp(fc: int, bits: Sequence[bool]) -> bytes:
    """FC 1 or 2 response."""
    packed = _pack_bits(bits)
    return struct.pack("!BB", fc, len(packed)) + packed


def mb_read_regs_resp(fc: int, regs: Sequence[int]) -> bytes:
    """FC 3 or 4 response."""
    return struct.pack(f"!BB{len(regs)}H", fc, 2 * len(regs), *regs)


def mb_write_single_coil(addr: int, on: bool) -> bytes:
    """FC 5 request; the normal response echoes it."""
    return struct.pack("!BHH", 5, addr, 0xFF00 if on else 0)


def mb_write_single_reg(addr: int, value: int) -> bytes:
    """FC 6 request; the normal response echoes it."""
    return struct.pack("!BHH", 6, addr, value & 0xFFFF)


def mb_write_coils(addr: int, bits: Sequence[bool]) -> bytes:
    """FC 15 request."""
    packed = _pack_bits(bits)
    return struct.pack("!BHHB", 15, addr, len(bits), len(packed)) + packed


def mb_write_regs(addr: int, regs: Sequence[int]) -> bytes:
    """FC 16 request."""
    return struct.pack(f"!BHHB{len(regs)}H", 16, addr, len(regs), 2 * len(regs), *regs)


def mb_write_multi_resp(fc: int, addr: int, count: int) -> bytes:
    """FC 15 or 16 response."""
    return struct.pack("!BHH", fc, addr, count)


def mb_report_server_id() -> bytes:
    """FC 17 request."""
    return b"\x11"


def mb_report_server_id_resp(server_id: bytes, running: bool = True) -> bytes:
    body = server_id + (b"\xff" if running else b"\x00")
    return struct.pack("!BB", 17, len(body)) + body


def mb_read_device_id(code: int = 1, object_id: int = 0) -> bytes:
    """FC 43 / MEI 14 Read Device Identification request (code 1 basic ... 4 one object)."""
    return struct.pack("!BBBB", 43, 14, code, object_id)


def mb_read_device_id_resp(objects: Sequence[tuple[int, bytes]], code: int = 1,
                           conformity: int = 0x01) -> bytes:
    body = b"".join(struct.pack("!BB", oid, len(v)) + v for oid, v in objects)
    return struct.pack("!BBBBBBB", 43, 14, code, conformity, 0, 0, len(objects)) + body


def mb_exception(fc: int, code: int) -> bytes:
    """Exception response: function code with the 0x80 bit, exception code (2 illegal address...)."""
    return struct.pack("!BB", fc | 0x80, code)


def _pack_bits(bits: Sequence[bool]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


# --------------------------------------------------------------------------- TPKT / COTP / S7comm

S7_PORT = 102
S7_AREA_DB = 0x84
S7_AREA_INPUTS = 0x81
S7_AREA_OUTPUTS = 0x82
S7_AREA_FLAGS = 0x83
S7_BLOCK_TYPES = {"OB": "08", "DB": "0A", "SDB": "0B", "FC": "0C", "SFC": "0D", "FB": "0E", "SFB": "0F"}


def tpkt(payload: bytes) -> bytes:
    return struct.pack("!BBH", 3, 0, 4 + len(payload)) + payload


def cotp_cr(src_ref: int = 1, calling_tsap: int = 0x0100, called_tsap: int = 0x0102,
            tpdu_size: int = 0x0A) -> bytes:
    """TPKT + COTP Connection Request (called TSAP 0x0102 = rack 0 slot 2)."""
    return tpkt(struct.pack("!BBHHBBBBBBHBBH", 17, 0xE0, 0, src_ref, 0, 0xC0, 1, tpdu_size,
                            0xC1, 2, calling_tsap, 0xC2, 2, called_tsap))


def cotp_cc(dst_ref: int = 1, src_ref: int = 2, calling_tsap: int = 0x0100,
            called_tsap: int = 0x0102, tpdu_size: int = 0x0A) -> bytes:
    """TPKT + COTP Connection Confirm."""
    return tpkt(struct.pack("!BBHHBBBBBBHBBH", 17, 0xD0, dst_ref, src_ref, 0, 0xC0, 1, tpdu_size,
                            0xC1, 2, calling_tsap, 0xC2, 2, called_tsap))


def cotp_dr(dst_ref: int = 1, src_ref: int = 2, reason: int = 0) -> bytes:
    """TPKT + COTP Disconnect Request (how a CPU refuses a connection to a wrong TSAP)."""
    return tpkt(struct.pack("!BBHHB", 6, 0x80, dst_ref, src_ref, reason))


def s7(rosctr: int, pduref: int, param: bytes, data: bytes = b"", error: int | None = None) -> bytes:
    """TPKT + COTP DT + S7 header (+ error class/code for Ack/Ack_Data) + parameter + data."""
    hdr = struct.pack("!BBHHHH", 0x32, rosctr, 0, pduref, len(param), len(data))
    if rosctr in (2, 3):
        hdr += struct.pack("!H", error or 0)
    return tpkt(b"\x02\xf0\x80" + hdr + param + data)


def s7_setup_comm(pduref: int = 0, pdu_size: int = 480, amq: int = 1) -> bytes:
    return s7(1, pduref, struct.pack("!BBHHH", 0xF0, 0, amq, amq, pdu_size))


def s7_setup_comm_ack(pduref: int = 0, pdu_size: int = 240, amq: int = 1) -> bytes:
    return s7(3, pduref, struct.pack("!BBHHH", 0xF0, 0, amq, amq, pdu_size))


S7Item = tuple[int, int, int, int]  # (area, db, byte address, byte count)


def _s7_item(area: int, db: int, byte_addr: int, count: int, transport: int = 2) -> bytes:
    addr = byte_addr << 3
    return struct.pack("!BBBBHHB", 0x12, 0x0A, 0x10, transport, count, db, area) + addr.to_bytes(3, "big")


def s7_read_var(pduref: int, items: Sequence[S7Item]) -> bytes:
    """Job Read Var (func 0x04) for BYTE items."""
    param = struct.pack("!BB", 4, len(items)) + b"".join(_s7_item(*it) for it in items)
    return s7(1, pduref, param)


def s7_read_var_ack(pduref: int, values: Sequence[bytes]) -> bytes:
    """Ack_Data of Read Var: one successful data item per value (BYTE transport, length in bits)."""
    data = b""
    for i, v in enumerate(values):
        data += struct.pack("!BBH", 0xFF, 4, 8 * len(v)) + v
        if len(v) & 1 and i < len(values) - 1:
            data += b"\x00"
    return s7(3, pduref, struct.pack("!BB", 4, len(values)), data)


def s7_write_var(pduref: int, area: int, db: int, byte_addr: int, value: bytes) -> bytes:
    """Job Write Var (func 0x05) of one BYTE item."""
    param = struct.pack("!BB", 5, 1) + _s7_item(area, db, byte_addr, len(value))
    data = struct.pack("!BBH", 0, 4, 8 * len(value)) + value
    return s7(1, pduref, param, data)


def s7_write_var_ack(pduref: int, return_code: int = 0xFF) -> bytes:
    return s7(3, pduref, b"\x05\x01", bytes([return_code]))


def s7_plc_stop(pduref: int) -> bytes:
    """Job PLC Stop (func 0x29)."""
    return s7(1, pduref, b"\x29" + bytes(5) + b"\x09P_PROGRAM")


def s7_plc_stop_ack(pduref: int) -> bytes:
    return s7(3, pduref, b"\x29")


def s7_pi_service(pduref: int, service: str, params: bytes = b"") -> bytes:
    """Job PI-Service (func 0x28), e.g. service 'P_PROGRAM' with no params = hot start."""
    svc = service.encode("ascii")
    param = (b"\x28" + bytes(6) + b"\xfd" + struct.pack("!H", len(params)) + params
             + bytes([len(svc)]) + svc)
    return s7(1, pduref, param)


def s7_pi_ack(pduref: int) -> bytes:
    return s7(3, pduref, b"\x28\x00")


def s7_block_name(block_type: str, number: int) -> bytes:
    return (S7_BLOCK_TYPES[block_type] + f"{number:05d}").encode("ascii")


def s7_delete_block(pduref: int, block_type: str, number: int) -> bytes:
    """PI-Service _DELE of one block (passive file system 'B')."""
    return s7_pi_service(pduref, "_DELE", b"\x01\x00" + s7_block_name(block_type, number) + b"B")


def s7_request_download(pduref: int, block_type: str, number: int, load_len: int = 104,
                        mc7_len: int = 60) -> bytes:
    """Job Request Download (func 0x1A) of a block to the passive file system."""
    fname = b"_" + s7_block_name(block_type, number) + b"P"
    part2 = b"1" + f"{load_len:06d}".encode() + f"{mc7_len:06d}".encode()
    param = (b"\x1a\x00\x00\x00" + bytes(4) + bytes([len(fname)]) + fname
             + bytes([len(part2)]) + part2)
    return s7(1, pduref, param)


def s7_request_download_ack(pduref: int) -> bytes:
    return s7(3, pduref, b"\x1a")


def s7_start_upload(pduref: int, block_type: str, number: int) -> bytes:
    """Job Start Upload (func 0x1D) of a block from the active file system."""
    fname = b"_" + s7_block_name(block_type, number) + b"A"
    return s7(1, pduref, b"\x1d\x00\x00\x00" + bytes(4) + bytes([len(fname)]) + fname)


def s7_start_upload_ack(pduref: int, upload_id: int = 7, length: int = 104) -> bytes:
    blen = f"{length:07d}".encode()
    return s7(3, pduref, b"\x1d\x00\x01\x00" + struct.pack("!I", upload_id) + bytes([len(blen)]) + blen)


def s7_szl_read(pduref: int, szl_id: int, index: int = 0, seq: int = 0) -> bytes:
    """Userdata request, function group 4 (CPU functions), subfunction 1 Read SZL."""
    param = b"\x00\x01\x12\x04\x11\x44\x01" + bytes([seq])
    data = struct.pack("!BBHHH", 0xFF, 9, 4, szl_id, index)
    return s7(7, pduref, param, data)


def s7_szl_response(pduref: int, szl_id: int, index: int, entries: Sequence[bytes], seq: int = 1) -> bytes:
    """Userdata response to Read SZL with equally sized list entries."""
    param = b"\x00\x01\x12\x08\x12\x84\x01" + bytes([seq]) + b"\x00\x00\x00\x00"
    size = len(entries[0]) if entries else 0
    body = struct.pack("!HHHH", szl_id, index, size, len(entries)) + b"".join(entries)
    data = struct.pack("!BBH", 0xFF, 9, len(body)) + body
    return s7(7, pduref, param, data)


def szl_0011_entries(order_number: str = "6ES7 315-2EH14-0AB0", hw: int = 1, fw: tuple[int, int] = (3, 3)) -> list[bytes]:
    """SZL 0x0011 (module identification) records: module, hardware and firmware."""
    mlfb = order_number.encode("ascii").ljust(20)[:20]
    return [
        struct.pack("!H", 1) + mlfb + struct.pack("!HHH", 0, hw, 0),
        struct.pack("!H", 6) + mlfb + struct.pack("!HHH", 0, hw, 0),
        struct.pack("!H", 7) + mlfb + struct.pack("!HBBBB", 0, ord("V"), fw[0], fw[1], 0),
    ]


# --------------------------------------------------------------------------- DNP3

DNP3_PORT = 20000


def _dnp_crc(data: bytes) -> bytes:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
    return struct.pack("<H", ~crc & 0xFFFF)


def dnp3(dst: int, src: int, app: bytes, *, master: bool = True, transport_seq: int = 0) -> bytes:
    """Link frame (unconfirmed user data) + transport header (FIR|FIN) + application fragment,
    with a CRC after the header and after every 16 data bytes."""
    user = bytes([0xC0 | (transport_seq & 0x3F)]) + app
    ctrl = 0xC4 if master else 0x44
    hdr = struct.pack("<BBBBHH", 0x05, 0x64, 5 + len(user), ctrl, dst, src)
    out = [hdr, _dnp_crc(hdr)]
    for i in range(0, len(user), 16):
        block = user[i : i + 16]
        out += [block, _dnp_crc(block)]
    return b"".join(out)


def dnp3_read_class(seq: int = 0, classes: Iterable[int] = (0,)) -> bytes:
    """Application request: READ (1) of class data objects (group 60 var 1 = class 0 ...)."""
    objs = b"".join(struct.pack("BBB", 60, c + 1, 0x06) for c in classes)
    return bytes([0xC0 | (seq & 0x0F), 1]) + objs


def dnp3_response_analog(seq: int, values: Sequence[int], iin: int = 0) -> bytes:
    """Application RESPONSE (129): group 30 var 2 (16-bit analog with flag), indexes 0..n-1."""
    objs = struct.pack("BBBBB", 30, 2, 0x00, 0, len(values) - 1)
    objs += b"".join(struct.pack("<Bh", 0x01, v) for v in values)
    return bytes([0xC0 | (seq & 0x0F), 129]) + struct.pack("<H", iin) + objs


def dnp3_direct_operate(seq: int, index: int, code: int = 0x03) -> bytes:
    """DIRECT_OPERATE (5) of a CROB (group 12 var 1) at one index (code 3 latch on)."""
    crob = struct.pack("<BBIIB", code, 1, 1000, 0, 0)
    return bytes([0xC0 | (seq & 0x0F), 5]) + struct.pack("<BBBHH", 12, 1, 0x28, 1, index) + crob


# --------------------------------------------------------------------------- EtherNet/IP + CIP

ENIP_PORT = 44818


def enip(command: int, data: bytes = b"", session: int = 0, context: bytes = bytes(8),
         status: int = 0) -> bytes:
    """Encapsulation header (24 bytes) + command data."""
    return struct.pack("<HHII", command, len(data), session, status) + context.ljust(8, b"\x00")[:8] \
        + struct.pack("<I", 0) + data


def enip_list_identity() -> bytes:
    return enip(0x63)


def enip_list_identity_resp(ip_addr: Addr, vendor: int = 1, device_type: int = 14,
                            product_code: int = 55, revision: tuple[int, int] = (20, 11),
                            serial: int = 0x00C0FFEE, name: str = "1756-L61/B LOGIX5561",
                            status: int = 0x0030, state: int = 3) -> bytes:
    nm = name.encode("ascii")
    item = (struct.pack("<H", 1) + struct.pack("!hH4s8s", 2, ENIP_PORT, _ip(ip_addr), bytes(8))
            + struct.pack("<HHHBBHI", vendor, device_type, product_code, revision[0], revision[1],
                          status, serial) + bytes([len(nm)]) + nm + bytes([state]))
    return enip(0x63, struct.pack("<HHH", 1, 0x0C, len(item)) + item)


def enip_register_session(session: int = 0) -> bytes:
    return enip(0x65, struct.pack("<HH", 1, 0), session=session)


def cip_request(service: int, cls: int, instance: int, attribute: int | None = None,
                data: bytes = b"") -> bytes:
    path = bytes([0x20, cls, 0x24, instance]) + (bytes([0x30, attribute]) if attribute is not None else b"")
    return bytes([service, len(path) // 2]) + path + data


def cip_response(service: int, data: bytes = b"", status: int = 0) -> bytes:
    return bytes([service | 0x80, 0, status, 0]) + data


def enip_send_rr_data(session: int, cip: bytes, context: bytes = bytes(8)) -> bytes:
    """SendRRData (0x6F): null address item + unconnected data item carrying `cip`."""
    cpf = struct.pack("<IHHHHHH", 0, 0, 2, 0, 0, 0xB2, len(cip)) + cip
    return enip(0x6F, cpf, session=session, context=context)


# --------------------------------------------------------------------------- IEC 60870-5-104

IEC104_PORT = 2404
IEC104_STARTDT_ACT = b"\x68\x04\x07\x00\x00\x00"
IEC104_STARTDT_CON = b"\x68\x04\x0b\x00\x00\x00"
IEC104_TESTFR_ACT = b"\x68\x04\x43\x00\x00\x00"
IEC104_TESTFR_CON = b"\x68\x04\x83\x00\x00\x00"


def iec104_s_frame(recv_seq: int) -> bytes:
    return b"\x68\x04\x01\x00" + struct.pack("<H", (recv_seq << 1) & 0xFFFF)


def iec104_i_frame(send_seq: int, recv_seq: int, type_id: int, cot: int, common_addr: int,
                   ioa: int, element: bytes, *, originator: int = 0) -> bytes:
    """I-format APDU carrying one information object (2-byte COT, 2-byte CA, 3-byte IOA).
    `element` is the type's information element, e.g. b'\\x14' for C_IC_NA_1 (type 100, QOI 20)."""
    asdu = (struct.pack("<BBBBH", type_id, 1, cot, originator, common_addr)
            + ioa.to_bytes(3, "little") + element)
    apci = struct.pack("<HH", (send_seq << 1) & 0xFFFF, (recv_seq << 1) & 0xFFFF)
    return struct.pack("BB", 0x68, 4 + len(asdu)) + apci + asdu


# --------------------------------------------------------------------------- BACnet/IP

BACNET_PORT = 47808


def _bvlc(function: int, npdu_apdu: bytes) -> bytes:
    return struct.pack("!BBH", 0x81, function, 4 + len(npdu_apdu)) + npdu_apdu


def bacnet_who_is() -> bytes:
    """Original-Broadcast-NPDU, Who-Is with no range (global broadcast network)."""
    return _bvlc(0x0B, b"\x01\x20\xff\xff\x00\xff" + b"\x10\x08")


def bacnet_object_id(obj_type: int, instance: int) -> int:
    return (obj_type << 22) | instance


def bacnet_i_am(device_instance: int, vendor_id: int = 7) -> bytes:
    apdu = (b"\x10\x00" + b"\xc4" + struct.pack("!I", bacnet_object_id(8, device_instance))
            + b"\x22\x05\xc4" + b"\x91\x03" + b"\x21" + bytes([vendor_id]))
    return _bvlc(0x0B, b"\x01\x00" + apdu)


def bacnet_read_property(invoke_id: int, obj_type: int, instance: int, prop: int = 85) -> bytes:
    """Original-Unicast-NPDU, confirmed ReadProperty (12); property 85 = present-value."""
    apdu = (bytes([0x00, 0x05, invoke_id, 0x0C]) + b"\x0c"
            + struct.pack("!I", bacnet_object_id(obj_type, instance)) + b"\x19" + bytes([prop]))
    return _bvlc(0x0A, b"\x01\x04" + apdu)


def bacnet_read_property_ack(invoke_id: int, obj_type: int, instance: int, value: float,
                             prop: int = 85) -> bytes:
    apdu = (bytes([0x30, invoke_id, 0x0C]) + b"\x0c"
            + struct.pack("!I", bacnet_object_id(obj_type, instance)) + b"\x19" + bytes([prop])
            + b"\x3e\x44" + struct.pack("!f", value) + b"\x3f")
    return _bvlc(0x0A, b"\x01\x00" + apdu)


# --------------------------------------------------------------------------- TLS

TLS_PORT = 443
# A browser-like TLS 1.2 offer (ECDHE-ECDSA/RSA AES-GCM, CHACHA20, then CBC fallbacks).
TLS_CIPHERS_BROWSER = (0xC02B, 0xC02F, 0xCCA9, 0xCCA8, 0xC02C, 0xC030, 0xC013, 0xC014, 0x009C,
                       0x009D, 0x002F, 0x0035)
# A short offer typical of a scripted implant.
TLS_CIPHERS_TOOL = (0xC030, 0xC02F, 0x009F, 0x009E, 0xC028, 0xC027, 0x003D, 0x003C, 0x0035, 0x002F, 0x00FF)
TLS_GROUPS = (0x001D, 0x0017, 0x0018)  # x25519, secp256r1, secp384r1
TLS_SIGALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)


def _ext(ext_type: int, body: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(body)) + body


def tls_record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    """One TLS record (22 handshake, 20 change_cipher_spec, 23 application_data, 21 alert)."""
    return struct.pack("!BHH", content_type, version, len(body)) + body


def _handshake(hs_type: int, body: bytes) -> bytes:
    return struct.pack("!B", hs_type) + len(body).to_bytes(3, "big") + body


def tls_client_hello(random: bytes, *, sni: str | None = None,
                     ciphers: Sequence[int] = TLS_CIPHERS_BROWSER,
                     groups: Sequence[int] = TLS_GROUPS, point_formats: Sequence[int] = (0,),
                     sigalgs: Sequence[int] = TLS_SIGALGS, alpn: Sequence[str] = (),
                     session_id: bytes = b"", record: bool = True) -> bytes:
    """A TLS 1.2 ClientHello (handshake message, wrapped in a record unless record=False).
    Extension order: server_name, extended_master_secret, renegotiation_info, supported_groups,
    ec_point_formats, session_ticket, [alpn], signature_algorithms; JA3 follows from these."""
    exts = b""
    if sni is not None:
        name = sni.encode("ascii")
        exts += _ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
    exts += _ext(0x0017, b"")
    exts += _ext(0xFF01, b"\x00")
    exts += _ext(0x000A, struct.pack(f"!H{len(groups)}H", 2 * len(groups), *groups))
    exts += _ext(0x000B, bytes([len(point_formats), *point_formats]))
    exts += _ext(0x0023, b"")
    if alpn:
        protos = b"".join(bytes([len(p)]) + p.encode("ascii") for p in alpn)
        exts += _ext(0x0010, struct.pack("!H", len(protos)) + protos)
    exts += _ext(0x000D, struct.pack(f"!H{len(sigalgs)}H", 2 * len(sigalgs), *sigalgs))
    body = (struct.pack("!H", 0x0303) + random[:32].ljust(32, b"\x00")
            + bytes([len(session_id)]) + session_id
            + struct.pack(f"!H{len(ciphers)}H", 2 * len(ciphers), *ciphers)
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    hs = _handshake(1, body)
    return tls_record(22, hs, 0x0301) if record else hs


def tls_server_hello(random: bytes, cipher: int = 0xC02F, session_id: bytes = b"",
                     record: bool = True) -> bytes:
    exts = _ext(0xFF01, b"\x00") + _ext(0x000B, b"\x01\x00") + _ext(0x0017, b"")
    body = (struct.pack("!H", 0x0303) + random[:32].ljust(32, b"\x00") + bytes([len(session_id)])
            + session_id + struct.pack("!HB", cipher, 0) + struct.pack("!H", len(exts)) + exts)
    hs = _handshake(2, body)
    return tls_record(22, hs) if record else hs


def tls_certificate(ders: Sequence[bytes], record: bool = True) -> bytes:
    """Certificate handshake message with a chain of DER certificates (leaf first)."""
    chain = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    hs = _handshake(11, len(chain).to_bytes(3, "big") + chain)
    return tls_record(22, hs) if record else hs


def tls_server_hello_done(record: bool = True) -> bytes:
    hs = _handshake(14, b"")
    return tls_record(22, hs) if record else hs


def tls_server_flight(random: bytes, ders: Sequence[bytes], cipher: int = 0xC02F,
                      session_id: bytes = b"") -> bytes:
    """ServerHello, Certificate, ServerHelloDone in one handshake record (as many servers send)."""
    return tls_record(22, tls_server_hello(random, cipher, session_id, record=False)
                      + tls_certificate(ders, record=False) + tls_server_hello_done(record=False))


def tls_client_finish(key_share: bytes, finished: bytes) -> bytes:
    """ClientKeyExchange (ECDHE point), ChangeCipherSpec and the encrypted Finished."""
    cke = tls_record(22, _handshake(16, bytes([len(key_share)]) + key_share))
    return cke + tls_record(20, b"\x01") + tls_record(22, finished)


def tls_server_finish(finished: bytes) -> bytes:
    return tls_record(20, b"\x01") + tls_record(22, finished)


def tls_app_data(ciphertext: bytes, max_record: int = 16384) -> bytes:
    """Application data records (opaque bytes), split at the 16 KiB record limit."""
    return b"".join(tls_record(23, ciphertext[i : i + max_record])
                    for i in range(0, len(ciphertext), max_record))


@lru_cache(maxsize=256)
def make_certificate(subject_cn: str, *, seed: int = 1, issuer_cn: str | None = None,
                     issuer_seed: int | None = None, org: str | None = None,
                     not_before: _dt.datetime = _dt.datetime(2024, 1, 1, tzinfo=_dt.UTC),
                     days: int = 825, san: tuple[str, ...] = (), serial: int | None = None) -> bytes:
    """A DER X.509 certificate, byte-identical for identical arguments.

    The subject key is a P-256 key derived from `seed`; self-signed unless `issuer_cn` is given,
    in which case it is signed by the key derived from `issuer_seed` (a CA's). ECDSA signatures use
    RFC 6979 deterministic nonces.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def key(s: int) -> ec.EllipticCurvePrivateKey:
        return ec.derive_private_key(0x5EED0000 + s, ec.SECP256R1())

    def name(cn: str) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    subject_key = key(seed)
    if issuer_cn is None:
        issuer_name, signer = name(subject_cn), subject_key
    else:
        issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)])
        signer = key(seed if issuer_seed is None else issuer_seed)
    b = (x509.CertificateBuilder().subject_name(name(subject_cn)).issuer_name(issuer_name)
         .public_key(subject_key.public_key())
         .serial_number(serial if serial is not None else 0x1000 + seed)
         .not_valid_before(not_before).not_valid_after(not_before + _dt.timedelta(days=days)))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False)
    if issuer_cn is None:
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    cert = b.sign(signer, hashes.SHA256(), ecdsa_deterministic=True)
    return cert.public_bytes(serialization.Encoding.DER)


# --------------------------------------------------------------------------- RDP (X.224 on TPKT)

RDP_PORT = 3389
RDP_PROTOCOL_SSL = 1
RDP_PROTOCOL_HYBRID = 2


def rdp_connection_request(user: str | None, requested_protocols: int = RDP_PROTOCOL_SSL | RDP_PROTOCOL_HYBRID,
                           flags: int = 0) -> bytes:
    """TPKT + X.224 CR with 'Cookie: mstshash=<user>' and an RDP_NEG_REQ."""
    cookie = f"Cookie: mstshash={user}\r\n".encode("ascii") if user is not None else b""
    neg = struct.pack("<BBHI", 1, flags, 8, requested_protocols)
    body = struct.pack("!BHHB", 0xE0, 0, 0, 0) + cookie + neg
    return tpkt(bytes([len(body)]) + body)


def rdp_connection_confirm(selected_protocol: int = RDP_PROTOCOL_SSL, src_ref: int = 0x1234) -> bytes:
    """TPKT + X.224 CC with an RDP_NEG_RSP."""
    neg = struct.pack("<BBHI", 2, 0x1F, 8, selected_protocol)
    body = struct.pack("!BHHB", 0xD0, 0, src_ref, 0) + neg
    return tpkt(bytes([len(body)]) + body)


# --------------------------------------------------------------------------- DNS / NBNS / DHCP / NTP

DNS_PORT = 53


def dns_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        lb = label.encode("ascii")
        out += bytes([len(lb)]) + lb
    return out + b"\x00"


def dns_query(ident: int, name: str, qtype: int = 1) -> bytes:
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + dns_name(name) + struct.pack("!HH", qtype, 1)


def dns_response(ident: int, name: str, addresses: Sequence[Addr], ttl: int = 300,
                 rcode: int = 0) -> bytes:
    """A response to an A query: answers point to the question name (compression pointer 0xC00C);
    rcode 3 (NXDOMAIN) with no answers for a missing name."""
    q = dns_name(name) + struct.pack("!HH", 1, 1)
    ans = b"".join(struct.pack("!HHHIH", 0xC00C, 1, 1, ttl, 4) + _ip(a) for a in addresses)
    return struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, len(addresses), 0, 0) + q + ans


NBNS_PORT = 137


def nbns_encode(name: str, suffix: int = 0x00) -> bytes:
    raw = name.upper().encode("ascii")[:15].ljust(15, b" ") + bytes([suffix])
    enc = bytes(b for c in raw for b in (0x41 + (c >> 4), 0x41 + (c & 0x0F)))
    return b"\x20" + enc + b"\x00"


def nbns_query(ident: int, name: str, suffix: int = 0x00, broadcast: bool = True) -> bytes:
    flags = 0x0110 if broadcast else 0x0100
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 0) + nbns_encode(name, suffix) + struct.pack("!HH", 0x20, 1)


def nbns_response(ident: int, name: str, address: Addr, suffix: int = 0x00, ttl: int = 300000) -> bytes:
    """Positive name query response (unicast from the name's owner): one NB record."""
    return (struct.pack("!HHHHHH", ident, 0x8500, 0, 1, 0, 0) + nbns_encode(name, suffix)
            + struct.pack("!HHIHH", 0x20, 1, ttl, 6, 0) + _ip(address))


DHCP_DISCOVER, DHCP_OFFER, DHCP_REQUEST, DHCP_ACK = 1, 2, 3, 5


def dhcp(msg_type: int, xid: int, client_mac: Addr, *, hostname: str | None = None,
         requested_ip: Addr | None = None, server_id: Addr | None = None, your_ip: Addr = b"\0\0\0\0",
         client_ip: Addr = b"\0\0\0\0", subnet_mask: Addr | None = None, router: Addr | None = None,
         dns: Addr | None = None, lease: int | None = None, domain: str | None = None) -> bytes:
    """A BOOTP/DHCP message: op follows the message type (OFFER/ACK are replies)."""
    mac = _mac(client_mac)
    op = 2 if msg_type in (DHCP_OFFER, DHCP_ACK, 6) else 1
    hdr = (struct.pack("!BBBBIHH", op, 1, 6, 0, xid, 0, 0) + _ip(client_ip) + _ip(your_ip)
           + (_ip(server_id) if op == 2 and server_id is not None else bytes(4)) + bytes(4)
           + mac + bytes(10) + bytes(64 + 128) + b"\x63\x82\x53\x63")
    opts = bytes([53, 1, msg_type])
    if op == 1:
        opts += bytes([61, 7, 1]) + mac
    if requested_ip is not None:
        opts += bytes([50, 4]) + _ip(requested_ip)
    if server_id is not None:
        opts += bytes([54, 4]) + _ip(server_id)
    if lease is not None:
        opts += bytes([51, 4]) + struct.pack("!I", lease)
    if subnet_mask is not None:
        opts += bytes([1, 4]) + _ip(subnet_mask)
    if router is not None:
        opts += bytes([3, 4]) + _ip(router)
    if dns is not None:
        opts += bytes([6, 4]) + _ip(dns)
    if domain is not None:
        d = domain.encode("ascii")
        opts += bytes([15, len(d)]) + d
    if hostname is not None:
        h = hostname.encode("ascii")
        opts += bytes([12, len(h)]) + h
    if op == 1:
        opts += bytes([55, 6, 1, 3, 6, 15, 31, 33])
    opts += b"\xff"
    msg = hdr + opts
    return msg + bytes(max(0, 300 - len(msg)))


NTP_PORT = 123
_NTP_EPOCH = 2208988800


def ntp_timestamp(ts_ns: int) -> bytes:
    sec, frac = divmod(ts_ns, 1_000_000_000)
    return struct.pack("!II", (sec + _NTP_EPOCH) & 0xFFFFFFFF, (frac << 32) // 1_000_000_000)


def ntp(ts_ns: int, *, server: bool = False, origin_ns: int = 0, stratum: int = 2,
        ref_id: bytes = b"\xc0\xa8\x01\x01") -> bytes:
    """NTPv4 client (mode 3) request or server (mode 4) reply stamped at packet time."""
    if not server:
        return struct.pack("!BBbb", 0x23, 0, 6, -20) + bytes(36) + ntp_timestamp(ts_ns)
    t = ntp_timestamp(ts_ns)
    return (struct.pack("!BBbbII", 0x24, stratum, 6, -23, 0x100, 0x200) + ref_id[:4]
            + ntp_timestamp(ts_ns - 60_000_000_000) + ntp_timestamp(origin_ns) + t + t)


# --------------------------------------------------------------------------- SMB2 (over NetBIOS session)

SMB_PORT = 445


def _nbss(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


def _smb2_header(command: int, message_id: int, *, response: bool = False, session_id: int = 0,
                 tree_id: int = 0, credits: int = 1) -> bytes:
    return (b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ", 64, 0, 0, command, credits,
                                     1 if response else 0, 0, message_id, 0xFEFF, tree_id, session_id)
            + bytes(16))


def smb2_negotiate(message_id: int = 0, client_guid: bytes = bytes(16),
                   dialects: Sequence[int] = (0x0202, 0x0210, 0x0300, 0x0302)) -> bytes:
    """SMB2 NEGOTIATE request (no negotiate contexts) in a NetBIOS session message."""
    body = struct.pack("<HHHHI", 36, len(dialects), 1, 0, 0x7F) + client_guid[:16].ljust(16, b"\0") \
        + bytes(8) + struct.pack(f"<{len(dialects)}H", *dialects)
    return _nbss(_smb2_header(0, message_id) + body)


def smb2_negotiate_resp(message_id: int = 0, server_guid: bytes = bytes(16), dialect: int = 0x0302,
                        system_time_ns: int = 0) -> bytes:
    """SMB2 NEGOTIATE response with an empty security buffer."""
    ft = system_time_ns // 100 + 116444736000000000
    body = (struct.pack("<HHHH", 65, 1, dialect, 0) + server_guid[:16].ljust(16, b"\0")
            + struct.pack("<IIIIQQHHI", 0x2F, 8388608, 8388608, 8388608, ft, 0, 128, 0, 0))
    return _nbss(_smb2_header(0, message_id, response=True) + body)


def smb2_read(message_id: int, session_id: int, tree_id: int, file_id: bytes, offset: int,
              length: int) -> bytes:
    """SMB2 READ request (signing, not encryption: the Windows default for a file share)."""
    hdr = _smb2_header(8, message_id, session_id=session_id, tree_id=tree_id)
    body = struct.pack("<HBBIQ", 49, 0x50, 0, length, offset) + file_id[:16].ljust(16, b"\0") \
        + struct.pack("<IIIHH", 1, 0, 0, 0, 0) + b"\x00"
    return _nbss(hdr + body)


def smb2_read_resp(message_id: int, session_id: int, tree_id: int, data: bytes) -> bytes:
    hdr = _smb2_header(8, message_id, response=True, session_id=session_id, tree_id=tree_id)
    body = struct.pack("<HBBIII", 17, 0x50, 0, len(data), 0, 0) + data
    return _nbss(hdr + body)


def smb2_encrypted(session_id: int, nonce: bytes, ciphertext: bytes) -> bytes:
    """An SMB 3.x TRANSFORM_HEADER message (encrypted traffic after session setup).

    tshark 4.0 tries to decrypt it and, for about one ciphertext in 65,536, takes the garbage for
    an SMB2 header and reports a malformed packet: for bulk traffic prefer smb2_read/_resp."""
    hdr = (b"\xfdSMB" + bytes(16) + nonce[:16].ljust(16, b"\0")
           + struct.pack("<IHHQ", len(ciphertext), 0, 1, session_id))
    return _nbss(hdr + ciphertext)
