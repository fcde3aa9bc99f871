"""Ethernet, ARP, IPv4/IPv6, TCP/UDP/ICMP and whole frames, with every checksum correct."""

from __future__ import annotations

import ipaddress
import struct
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
