"""Streaming pcap and pcapng writers, for tests, the benchmark and the demo generator.

Output is buffered and, when the path ends in ".gz", gzip-compressed deterministically
(mtime 0, fixed level, no file name in the header), so the same records give the same bytes.
"""

from __future__ import annotations

import gzip
import io
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

_BUFSIZE = 1 << 20
_GZ_LEVEL = 6


def _open_out(path: str | Path) -> tuple[BinaryIO, BinaryIO | None]:
    """(stream to write records to, underlying raw file or None)."""
    p = Path(path)
    if p.name.endswith(".gz"):
        raw = open(p, "wb")  # noqa: SIM115 - closed by the writer
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=_GZ_LEVEL, mtime=0)
        return io.BufferedWriter(gz, buffer_size=_BUFSIZE), raw  # type: ignore[arg-type]
    return open(p, "wb", buffering=_BUFSIZE), None  # noqa: SIM115


class _Writer:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._out, self._raw = _open_out(path)
        self.count = 0

    def close(self) -> None:
        if self._out is None:
            return
        self._out.close()
        if self._raw is not None:
            self._raw.close()
        self._out = None  # type: ignore[assignment]

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PcapWriter(_Writer):
    """Classic libpcap file: one link type, microsecond or nanosecond timestamps."""

    def __init__(self, path: str | Path, linktype: int = 1, nanosecond: bool = False,
                 big_endian: bool = False, snaplen: int = 262144) -> None:
        super().__init__(path)
        e = ">" if big_endian else "<"
        self._hdr = struct.Struct(e + "IIII")
        self._nano = nanosecond
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        self._out.write(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, ts_ns: int, frame: bytes, wirelen: int | None = None) -> None:
        sec, frac = divmod(int(ts_ns), 1_000_000_000)
        if not self._nano:
            frac //= 1000
        n = len(frame)
        self._out.write(self._hdr.pack(sec, frac, n, n if wirelen is None else wirelen))
        self._out.write(frame)
        self.count += 1


def _option(code: int, value: bytes, e: str) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * pad


class PcapngWriter(_Writer):
    """pcapng file: one section, one IDB per interface, one EPB per record.

    interfaces: (linktype, tsresol) per interface; tsresol None means microseconds, an int k >= 0
    means 10^-k s, and an int k < 0 means 2^-(-k) s (the power-of-2 form of if_tsresol).
    """

    def __init__(self, path: str | Path, interfaces: Sequence[tuple[int, int | None]] = ((1, None),),
                 big_endian: bool = False, snaplen: int = 262144, section: bool = True) -> None:
        super().__init__(path)
        self._e = e = ">" if big_endian else "<"
        self._epb = struct.Struct(e + "IIIIIII")
        self._units: list[tuple[bool, int]] = []
        self._tsoffset: list[int] = []
        self._snaplen = snaplen
        self.interfaces: list[tuple[int, int | None]] = []
        if section:
            self.new_section()
        for linktype, tsresol in interfaces:
            self.add_interface(linktype, tsresol)

    def _block(self, btype: int, body: bytes) -> None:
        e = self._e
        n = 12 + len(body)
        self._out.write(struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n))

    def new_section(self) -> None:
        """Start a new section (SHB); interfaces must be added again after it."""
        e = self._e
        self._units = []
        self._tsoffset = []
        self.interfaces = []
        self._block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)
                    + _option(4, b"plantwatch", e) + _option(0, b"", e))

    def add_interface(self, linktype: int, tsresol: int | None = None, tsoffset: int = 0) -> int:
        """Add an IDB; tsoffset (if_tsoffset, seconds) is subtracted from written timestamps."""
        e = self._e
        body = struct.pack(e + "HHI", linktype, 0, self._snaplen)
        if tsresol is None:
            units = (False, 1_000_000)
        elif tsresol >= 0:
            body += _option(9, bytes([tsresol]), e)
            units = (False, 10 ** tsresol)
        else:
            body += _option(9, bytes([0x80 | -tsresol]), e)
            units = (True, -tsresol)
        if tsoffset:
            body += _option(14, struct.pack(e + "q", tsoffset), e)
        if tsresol is not None or tsoffset:
            body += _option(0, b"", e)
        self._block(1, body)
        self._units.append(units)
        self._tsoffset.append(tsoffset)
        self.interfaces.append((linktype, tsresol))
        return len(self._units) - 1

    def _ticks(self, ts_ns: int, iface: int) -> int:
        pow2, u = self._units[iface]
        ts_ns = int(ts_ns) - self._tsoffset[iface] * 1_000_000_000
        if pow2:
            sec, frac = divmod(int(ts_ns), 1_000_000_000)
            # Round up so a reader that truncates (as Wireshark does) gets the same ns back.
            return (sec << u) + -((-frac << u) // 1_000_000_000)
        if u >= 1_000_000_000:
            return int(ts_ns) * (u // 1_000_000_000)
        return int(ts_ns) // (1_000_000_000 // u)

    def write(self, ts_ns: int, frame: bytes, iface: int = 0, wirelen: int | None = None) -> None:
        t = self._ticks(ts_ns, iface)
        n = len(frame)
        pad = (-n) % 4
        blen = 32 + n + pad
        out = self._out
        out.write(self._epb.pack(6, blen, iface, t >> 32, t & 0xFFFFFFFF, n,
                                 n if wirelen is None else wirelen))
        out.write(frame)
        out.write(b"\0" * pad + blen.to_bytes(4, "big" if self._e == ">" else "little"))
        self.count += 1

    def write_simple(self, frame: bytes, wirelen: int | None = None) -> None:
        """A Simple Packet Block (interface 0, no timestamp)."""
        e = self._e
        n = len(frame)
        pad = (-n) % 4
        self._block(3, struct.pack(e + "I", n if wirelen is None else wirelen) + frame + b"\0" * pad)
        self.count += 1

    def write_raw_block(self, btype: int, body: bytes) -> None:
        """Any block (custom, NRB, ISB...); body is padded to 4 bytes."""
        self._block(btype, body + b"\0" * ((-len(body)) % 4))


def write_pcap(path: str | Path, records: Iterable[tuple], linktype: int = 1,
               nanosecond: bool = False, **kw) -> int:
    """Write (ts_ns, frame) records to a pcap file; returns the record count."""
    with PcapWriter(path, linktype=linktype, nanosecond=nanosecond, **kw) as w:
        for r in records:
            w.write(r[0], r[1])
        return w.count


def write_pcapng(path: str | Path, records: Iterable[tuple],
                 interfaces: Sequence[tuple[int, int | None]] = ((1, None),), **kw) -> int:
    """Write (ts_ns, frame) or (ts_ns, frame, iface) records to a pcapng file."""
    with PcapngWriter(path, interfaces=interfaces, **kw) as w:
        for r in records:
            w.write(r[0], r[1], r[2] if len(r) > 2 else 0)
        return w.count
