"""Rewrite a real capture so that its ICS PDUs span TCP segments, for the reassembly tests.

Every IPv4/TCP frame (Ethernet, classic pcap) with payload on one of `ports` is cut into two
segments at a varying point (1 byte, inside the header, the middle, all but the last byte), the
second starting at seq + cut; optionally the first piece is sent again after the second (a
retransmission). IP length and checksum are fixed; the rest of each frame is kept. tshark is the
oracle on the rewritten file, so nothing here needs to agree with our decoders.
"""

from __future__ import annotations

import struct
from pathlib import Path

_CUTS = (1, 3, 0, -1)  # 0: the middle, -1: all but the last byte


def _ip_checksum(hdr: bytes) -> int:
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _frame(eth: bytes, ip: bytes, tcp: bytes, seq: int, piece: bytes) -> bytes:
    ip = bytearray(ip)
    ip[2:4] = struct.pack("!H", len(ip) + len(tcp) + len(piece))
    ip[10:12] = b"\0\0"
    ip[10:12] = struct.pack("!H", _ip_checksum(bytes(ip)))
    tcp = bytearray(tcp)
    tcp[4:8] = struct.pack("!I", seq % (1 << 32))
    return eth + bytes(ip) + bytes(tcp) + piece


def split_capture(src: Path, dst: Path, ports: set[int], retransmit_every: int = 0,
                  min_first: int = 1) -> int:
    """Write `dst`; returns how many segments were cut. `min_first`: the least bytes left in the
    first piece (tshark's Modbus/TCP heuristic only claims a segment of 8 bytes or more: with
    fewer, it never reassembles, and then misreads the rest of the stream)."""
    raw = src.read_bytes()
    magic = raw[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    if struct.unpack(endian + "I", raw[20:24])[0] != 1:
        raise ValueError(f"{src}: not Ethernet")
    out = [raw[:24]]
    off, n_cut = 24, 0
    while off + 16 <= len(raw):
        ts_s, ts_u, incl, orig = struct.unpack(endian + "IIII", raw[off : off + 16])
        pkt = raw[off + 16 : off + 16 + incl]
        off += 16 + incl
        frames = [pkt]
        if len(pkt) >= 54 and pkt[12:14] == b"\x08\x00" and pkt[23] == 6 and pkt[14] >> 4 == 4:
            ihl = (pkt[14] & 0x0F) * 4
            tot = struct.unpack("!H", pkt[16:18])[0]
            t = 14 + ihl
            doff = (pkt[t + 12] >> 4) * 4
            sport, dport, seq = struct.unpack("!HHI", pkt[t : t + 8])
            payload = pkt[t + doff : 14 + tot]
            frag = struct.unpack("!H", pkt[20:22])[0] & 0x3FFF
            if (sport in ports or dport in ports) and len(payload) > min_first and not frag \
                    and len(pkt) >= 14 + tot:
                c = _CUTS[n_cut % len(_CUTS)]
                cut = len(payload) // 2 if c == 0 else len(payload) - 1 if c == -1 else c
                cut = min(max(cut, min_first), len(payload) - 1)
                eth, ip, tcp = pkt[:14], pkt[14:t], pkt[t : t + doff]
                first = _frame(eth, ip, tcp, seq, payload[:cut])
                frames = [first, _frame(eth, ip, tcp, seq + cut, payload[cut:])]
                n_cut += 1
                if retransmit_every and n_cut % retransmit_every == 0:
                    frames.append(first)
        for f in frames:
            out.append(struct.pack(endian + "IIII", ts_s, ts_u, len(f), len(f)) + f)
    dst.write_bytes(b"".join(out))
    return n_cut
