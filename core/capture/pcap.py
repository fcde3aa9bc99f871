"""Classic libpcap files: the 24-byte file header, then records walked a block at a time."""

from __future__ import annotations

import struct

import numpy as np

from plantwatch.core.capture.batch import SUPPORTED_LINKTYPES
from plantwatch.core.capture.records import I64, NS, Parser, Piece, gather

MAX_PCAP_CAPLEN = 262144             # Wireshark's standard maximum packet size
PCAP_MAGICS = {0xA1B2C3D4: 1000, 0xA1B23C4D: 1}   # read as little-endian -> ns per fraction unit
_AR16 = np.arange(16, dtype=I64)


class PcapParser(Parser):
    def header(self, buf: bytes) -> int:
        if len(buf) < 24:
            raise self.err("truncated file header")
        magic = int.from_bytes(buf[:4], "little")
        e = "<" if magic in PCAP_MAGICS else ">"
        magic = int.from_bytes(buf[:4], "little" if e == "<" else "big")
        self.mult = PCAP_MAGICS[magic]
        self.e = e
        snaplen, network = struct.unpack_from(e + "II", buf, 16)
        self.linktype = network & 0xFFFF
        if self.linktype not in SUPPORTED_LINKTYPES:
            raise self.err(f"unknown link type {self.linktype}")
        self.limit = min(max(MAX_PCAP_CAPLEN, snaplen), 16 << 20)
        self.unpack = struct.Struct(e + "I").unpack_from
        return 24

    def check_next(self, buf: bytes, pos: int) -> None:
        """The record at pos did not fit in buf: fail now if its length is absurd."""
        if pos + 12 <= len(buf):
            c = self.unpack(buf, pos + 8)[0]
            if c > self.limit:
                raise self.err(f"corrupt record at byte {pos}: captured length {c}")

    def walk(self, buf: bytes, start: int, base: int) -> tuple[list[Piece], int]:
        unpack = self.unpack
        offs: list[int] = []
        append = offs.append
        # p points at each record's caplen field; one unpack and one compare per record.
        p = start + 8
        lim = len(buf) + 8
        try:
            while True:
                q = p + 16 + unpack(buf, p)[0]
                if q > lim:
                    break
                append(p)
                p = q
        except struct.error:
            pass
        end = p - 8
        if not offs:
            return [], end
        arr = np.frombuffer(buf, np.uint8)
        rec = np.array(offs, dtype=I64) - 8
        h = gather(arr, rec, _AR16, self.e + "u4").reshape(-1, 4).astype(I64)
        caplen = h[:, 2]
        bad = np.flatnonzero(caplen > self.limit)
        if bad.size:
            i = int(bad[0])
            raise self.err(f"corrupt record at byte {base + int(rec[i])}: captured length {int(caplen[i])}")
        ts = h[:, 0] * NS + h[:, 1] * self.mult
        lt = np.full(rec.shape[0], self.linktype, np.int32)
        return [self.finish(arr, rec + 16, caplen, h[:, 3], ts, lt)], end

