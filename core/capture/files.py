"""Where packets come from: pcap and pcapng files (also gzip-compressed) and directories of them.

read_batches() streams RawBatch objects in packet-time order. Files are read in blocks from a
file object with read() only (no seek, no mmap), so the same parsers work on a pipe. The record
headers of a block are walked with one struct.unpack_from per record (the only per-record Python);
every other header field is gathered for the whole block at once with numpy.

Choices worth knowing:
- Several files are merged on a key that is each file's running maximum timestamp, ties broken by
  file order: a stable k-way merge in which a file's records keep their order even when their
  timestamps go backwards.
- pcapng Simple Packet Blocks carry no timestamp: they get the last timestamp seen in the file
  (in practice the previous packet of their section; 0 if there was none yet) and interface 0's
  link type. tshark shows no time for them.
- pcapng custom blocks and systemd journal blocks are not packets but Wireshark numbers them as
  frames: they use up a frame number, so `frame` stays equal to tshark's frame.number.
- RawBatch.data may hold bytes between records (record headers): only data[offset:offset+caplen]
  is a record. It can be a read-only view of a read block.
- pcapng interfaces with an unsupported link type are accepted at IDB time; the CaptureError
  "unknown link type N" is raised when a packet on such an interface is met.
- A record cut short by the end of the file (or of a truncated gzip stream) is not an error: the
  packets before it are kept and a warning is reported.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from plantwatch.core.capture.batch import SUPPORTED_LINKTYPES, CaptureError, RawBatch

log = logging.getLogger(__name__)

BLOCK_SIZE = 4 << 20                 # bytes read (or decompressed) at a time
MAX_PCAP_CAPLEN = 262144             # Wireshark's standard maximum packet size
MAX_PCAPNG_BLOCK = 64 << 20          # larger pcapng blocks are treated as corruption
_PCAP_MAGICS = {0xA1B2C3D4: 1000, 0xA1B23C4D: 1}   # read as little-endian -> ns per fraction unit
_SHB = 0x0A0D0D0A
_BOM = 0x1A2B3C4D
_GZIP = b"\x1f\x8b"
# pcapng blocks that carry no packet but that Wireshark numbers as frames (custom blocks,
# systemd journal export): they use up a frame number so ours stay equal to frame.number.
_PHANTOM_BLOCKS = frozenset({0x00000BAD, 0x40000BAD, 9})
_ISB_COUNTERS = {4: "ifrecv", 5: "ifdrop", 6: "filteraccept", 7: "osdrop", 8: "usrdeliv"}
_AR16 = np.arange(16, dtype=np.int64)
_AR28 = np.arange(28, dtype=np.int64)
_AR4 = np.arange(4, dtype=np.int64)
_I64 = np.int64
_NS = 1_000_000_000


def _looks_like_capture(head: bytes) -> bool:
    if len(head) < 4:
        return False
    m = int.from_bytes(head[:4], "little")
    return m in _PCAP_MAGICS or int.from_bytes(head[:4], "big") in _PCAP_MAGICS or m == _SHB


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise CaptureError(str(path), "no such file") from None
    except PermissionError:
        raise CaptureError(str(path), "permission denied") from None
    except IsADirectoryError:
        raise CaptureError(str(path), "is a directory") from None
    except OSError as e:
        raise CaptureError(str(path), e.strerror or str(e)) from None


def _probe(path: Path) -> bool:
    """True when the file starts like a capture (gzip is looked into)."""
    with _open(path) as f:
        head = f.read(4096)
    if head.startswith(_GZIP):
        try:
            head = zlib.decompressobj(31).decompress(head, 4)
        except zlib.error:
            return False
    return _looks_like_capture(head)


def iter_files(paths: Sequence[str | Path]) -> list[Path]:
    """The capture files named by `paths`: files as given, directories expanded to the capture
    files directly inside them (recognised by magic, sorted by name)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            try:
                entries = sorted(p.iterdir(), key=lambda q: q.name)
            except PermissionError:
                raise CaptureError(str(p), "permission denied") from None
            found = [q for q in entries if q.is_file() and _probe(q)]
            if not found:
                raise CaptureError(str(p), "no capture files in directory")
            out.extend(found)
        elif not p.exists():
            raise CaptureError(str(p), "no such file")
        else:
            out.append(p)
    return out


def total_input_bytes(paths: Sequence[str | Path]) -> int:
    """Sum of the on-disk sizes of the capture files (what on_progress counts up to)."""
    return sum(os.path.getsize(p) for p in iter_files(paths))


# ----------------------------------------------------------------------------- byte streams

class _Stream:
    """Decompressed bytes of one file, chunk by chunk, from read() calls only."""

    def __init__(self, f: BinaryIO, progress: Callable[[int], None]) -> None:
        self.f = f
        self.progress = progress
        self.truncated_gzip = False
        self.first = f.read(BLOCK_SIZE)
        progress(len(self.first))
        self.gzip = self.first.startswith(_GZIP)

    def _raw(self) -> Iterator[bytes]:
        if self.first:
            yield self.first
        self.first = b""
        while True:
            b = self.f.read(BLOCK_SIZE)
            if not b:
                return
            self.progress(len(b))
            yield b

    def chunks(self) -> Iterator[bytes]:
        if not self.gzip:
            yield from self._raw()
            return
        d = zlib.decompressobj(31)
        fed = False
        for comp in self._raw():
            data = comp
            while data:
                fed = True
                try:
                    out = d.decompress(data, BLOCK_SIZE)
                except zlib.error:
                    self.truncated_gzip = True  # corrupt data: keep what came before
                    return
                if out:
                    yield out
                if d.eof:
                    data = d.unused_data
                    d = zlib.decompressobj(31)
                    fed = False
                    if data and not data.startswith(_GZIP):
                        return  # trailing garbage after the last member, as gzip(1) tolerates
                else:
                    data = d.unconsumed_tail
        if fed and not d.eof:
            out = d.flush()
            if out:
                yield out
            self.truncated_gzip = True


# ----------------------------------------------------------------------------- parsed records

@dataclass(slots=True)
class _Piece:
    """Records of one file, in file order, whose bytes lie in `data`."""

    data: np.ndarray
    off: np.ndarray
    caplen: np.ndarray
    wirelen: np.ndarray
    ts: np.ndarray
    linktype: np.ndarray
    frame: np.ndarray
    file_id: np.ndarray
    key: np.ndarray        # merge key: running max of the file's timestamps

    def __len__(self) -> int:
        return int(self.off.shape[0])

    def take(self, sl: slice) -> _Piece:
        return _Piece(self.data, self.off[sl], self.caplen[sl], self.wirelen[sl], self.ts[sl],
                      self.linktype[sl], self.frame[sl], self.file_id[sl], self.key[sl])


def _gather(arr: np.ndarray, at: np.ndarray, idx: np.ndarray, dtype: str) -> np.ndarray:
    """Fixed-size fields at byte offsets `at` of `arr`, as an (n, k) array of `dtype`."""
    return arr[at[:, None] + idx].view(dtype)


def _ticks_to_ns(ticks: np.ndarray, pow2: bool, exp: int) -> np.ndarray:
    """Timestamps in units of 10^-exp (or 2^-exp) seconds to ns, truncating like Wireshark."""
    if pow2:
        if exp == 0:
            return ticks * _NS
        sec = ticks >> exp
        frac = ticks & ((1 << exp) - 1)
        if exp > 33:  # keep frac * 1e9 inside int64
            frac >>= exp - 33
            exp = 33
        return sec * _NS + ((frac * _NS) >> exp)
    if exp <= 9:
        return ticks * (10 ** (9 - exp))
    return ticks // (10 ** (exp - 9))


class _Parser:
    """Base: turns a stream of decompressed chunks into pieces."""

    def __init__(self, path: str, file_id: int) -> None:
        self.path = path
        self.file_id = file_id
        self.count = 0        # frame numbers used so far
        self.packets = 0      # records yielded so far (count minus non-packet frames)
        self.last_ts = 0      # last timestamp (for pcapng SPBs and the merge key)
        self.key = -(1 << 62)

    def err(self, problem: str) -> CaptureError:
        return CaptureError(self.path, problem)

    def finish(self, data: np.ndarray, off, caplen, wirelen, ts, linktype,
               keep: np.ndarray | None = None) -> _Piece:
        n = off.shape[0]
        frame = np.arange(self.count + 1, self.count + 1 + n, dtype=_I64)
        self.count += n
        self.packets += n
        if keep is not None:  # drop frame numbers used by non-packet blocks
            off, caplen, wirelen, ts, linktype, frame = (
                a[keep] for a in (off, caplen, wirelen, ts, linktype, frame))
            n = off.shape[0]
            self.packets -= int((~keep).sum())
        key = np.maximum.accumulate(np.maximum(ts, self.key)) if n else ts
        if n:
            self.key = int(key[-1])
            self.last_ts = int(ts[-1])
        return _Piece(data, off, caplen.astype(np.int32), wirelen.astype(np.int32), ts,
                      linktype, frame, np.full(n, self.file_id, np.int32), key)

    # subclasses: header(buf) -> bytes consumed; walk(buf, start) -> (pieces, consumed)


class _PcapParser(_Parser):
    def header(self, buf: bytes) -> int:
        if len(buf) < 24:
            raise self.err("truncated file header")
        magic = int.from_bytes(buf[:4], "little")
        e = "<" if magic in _PCAP_MAGICS else ">"
        magic = int.from_bytes(buf[:4], "little" if e == "<" else "big")
        self.mult = _PCAP_MAGICS[magic]
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

    def walk(self, buf: bytes, start: int, base: int) -> tuple[list[_Piece], int]:
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
        rec = np.array(offs, dtype=_I64) - 8
        h = _gather(arr, rec, _AR16, self.e + "u4").reshape(-1, 4).astype(_I64)
        caplen = h[:, 2]
        bad = np.flatnonzero(caplen > self.limit)
        if bad.size:
            i = int(bad[0])
            raise self.err(f"corrupt record at byte {base + int(rec[i])}: captured length {int(caplen[i])}")
        ts = h[:, 0] * _NS + h[:, 1] * self.mult
        lt = np.full(rec.shape[0], self.linktype, np.int32)
        return [self.finish(arr, rec + 16, caplen, h[:, 3], ts, lt)], end


@dataclass(slots=True)
class _Iface:
    linktype: int
    snaplen: int
    pow2: bool
    exp: int
    tsoffset: int


class _PcapngParser(_Parser):
    def __init__(self, path: str, file_id: int) -> None:
        super().__init__(path, file_id)
        self.e = "<"
        self.ifaces: list[_Iface] = []
        self.section_seen = False
        self.isb: dict[int, dict[str, int]] = {}   # latest Interface Statistics Block per interface

    def header(self, buf: bytes) -> int:
        return 0  # the SHB is handled by walk()

    def _set_order(self, e: str) -> None:
        self.e = e
        self.u2 = struct.Struct(e + "II").unpack_from

    def check_next(self, buf: bytes, pos: int) -> None:
        if pos + 12 <= len(buf):
            e = self.e
            if struct.unpack_from("<I", buf, pos)[0] == _SHB:
                bom = struct.unpack_from("<I", buf, pos + 8)[0]
                e = "<" if bom == _BOM else ">"
            blen = struct.unpack_from(e + "I", buf, pos + 4)[0]
            if blen > MAX_PCAPNG_BLOCK or blen < 12 or blen % 4:
                raise self.err(f"corrupt block at byte {pos}: length {blen}")

    def walk(self, buf: bytes, start: int, base: int) -> tuple[list[_Piece], int]:
        n = len(buf)
        pieces: list[_Piece] = []
        offs: list[int] = []
        extras: list[tuple[int, int, int, int, int | None, int]] = []
        off = start
        if not self.section_seen:
            self._set_order("<")
        u2 = self.u2
        append = offs.append
        while True:
            # fast path: Enhanced Packet Blocks (validated for the whole block afterwards)
            try:
                while True:
                    t, blen = u2(buf, off)
                    nxt = off + blen
                    if t != 6 or nxt > n or blen < 32:
                        break
                    append(off)
                    off = nxt
            except struct.error:
                break  # fewer than 8 bytes left
            if off + 12 > n:
                break
            # slow path: any other block
            if t == _SHB:
                bom = struct.unpack_from("<I", buf, off + 8)[0]
                e = "<" if bom == _BOM else ">" if bom == 0x4D3C2B1A else None
                if e is None:
                    self._flush(buf, offs, extras, pieces, base)
                    raise self.err(f"corrupt section header at byte {base + off}")
                blen = struct.unpack_from(e + "I", buf, off + 4)[0]
            self._check_len(buf, offs, extras, pieces, base, off, blen)
            if off + blen > n:
                break
            if t == _SHB:
                self._flush(buf, offs, extras, pieces, base)
                offs = []
                extras = []
                append = offs.append
                self._set_order(e)
                u2 = self.u2
                self.ifaces = []
                self.section_seen = True
            elif not self.section_seen:
                raise self.err("not a pcap or pcapng file")
            elif t == 1:
                self._idb(buf, off, blen)
            elif t == 3:
                self._spb(buf, off, blen, offs, extras)
            elif t == 2:
                self._pb(buf, off, blen, extras)
            elif t in _PHANTOM_BLOCKS:
                extras.append((off, off, 0, 0, None, -1))
            elif t == 5:
                self._isb(buf, off, blen)
            elif t == 6:  # an EPB shorter than its fixed fields
                self._flush(buf, offs, extras, pieces, base)
                raise self.err(f"corrupt block at byte {base + off}: length {blen}")
            off += blen
        self._flush(buf, offs, extras, pieces, base)
        return pieces, off

    def _check_len(self, buf, offs, extras, pieces, base, off, blen) -> None:
        if blen < 12 or blen % 4 or blen > MAX_PCAPNG_BLOCK:
            self._flush(buf, offs, extras, pieces, base)  # earlier errors first
            raise self.err(f"corrupt block at byte {base + off}: length {blen}")

    def _idb(self, buf: bytes, off: int, blen: int) -> None:
        e = self.e
        if blen < 20:
            raise self.err(f"corrupt interface block at byte {off}")
        linktype, _, snaplen = struct.unpack_from(e + "HHI", buf, off + 8)
        pow2, exp, tsoffset = False, 6, 0
        p, end = off + 16, off + blen - 4
        while p + 4 <= end:
            code, ln = struct.unpack_from(e + "HH", buf, p)
            if code == 0:
                break
            if code == 9 and ln >= 1:
                r = buf[p + 4]
                pow2, exp = bool(r & 0x80), r & 0x7F
            elif code == 14 and ln >= 8:
                tsoffset = struct.unpack_from(e + "q", buf, p + 4)[0]
            p += 4 + ln + ((-ln) % 4)
        self.ifaces.append(_Iface(linktype, snaplen, pow2, exp, tsoffset))

    def _isb(self, buf: bytes, off: int, blen: int) -> None:
        """Interface Statistics Block: keep its counters (received, dropped by the interface,
        dropped by the OS, delivered) for capture drop reports."""
        e = self.e
        if blen < 24:
            return
        iface = struct.unpack_from(e + "I", buf, off + 8)[0]
        stats: dict[str, int] = {}
        p, end = off + 20, off + blen - 4
        while p + 4 <= end:
            code, ln = struct.unpack_from(e + "HH", buf, p)
            if code == 0:
                break
            name = _ISB_COUNTERS.get(code)
            if name and ln == 8 and p + 12 <= end:
                stats[name] = struct.unpack_from(e + "Q", buf, p + 4)[0]
            p += 4 + ln + ((-ln) % 4)
        self.isb[iface] = stats

    def _ts_of(self, iface: int, hi: int, lo: int) -> int:
        if iface >= len(self.ifaces):
            raise self.err(f"packet on undefined interface {iface}")
        ifc = self.ifaces[iface]
        ns = int(_ticks_to_ns(np.array([(hi << 32) | lo], _I64), ifc.pow2, ifc.exp)[0])
        return ns + ifc.tsoffset * _NS

    def _last_ts(self, buf: bytes, offs: list[int], extras: list) -> int:
        """Timestamp of the latest timestamped record so far in this section."""
        cand = [(e[0], e[4]) for e in reversed(extras) if e[4] is not None][:1]
        if offs:
            o = offs[-1]
            iface, hi, lo = struct.unpack_from(self.e + "III", buf, o + 8)
            cand.append((o, self._ts_of(iface, hi, lo)))
        if not cand:
            return self.last_ts
        return max(cand)[1]

    def _spb(self, buf: bytes, off: int, blen: int, offs: list[int], extras: list) -> None:
        if not self.ifaces:
            raise self.err("packet on undefined interface 0")
        wirelen = struct.unpack_from(self.e + "I", buf, off + 8)[0]
        cap = min(wirelen, blen - 16)
        if self.ifaces[0].snaplen:
            cap = min(cap, self.ifaces[0].snaplen)
        ts = self._last_ts(buf, offs, extras)
        extras.append((off, off + 12, cap, wirelen, ts, 0))

    def _pb(self, buf: bytes, off: int, blen: int, extras: list) -> None:
        if blen < 32:
            raise self.err(f"corrupt block at byte {off}: length {blen}")
        iface, _, hi, lo, cap, wirelen = struct.unpack_from(self.e + "HHIIII", buf, off + 8)
        if cap > blen - 32:
            raise self.err(f"corrupt block at byte {off}: captured length {cap}")
        extras.append((off, off + 28, cap, wirelen, self._ts_of(iface, hi, lo), iface))

    def _flush(self, buf: bytes, offs: list[int], extras: list, pieces: list, base: int) -> None:
        """Turn the records of the current section collected from this block into a piece."""
        if not offs and not extras:
            return
        arr = np.frombuffer(buf, np.uint8)
        e = self.e
        nif = len(self.ifaces)
        lt_of = np.array([i.linktype for i in self.ifaces] or [0], np.int32)
        rec = np.array(offs, dtype=_I64)
        h = _gather(arr, rec, _AR28, e + "u4").reshape(-1, 7).astype(_I64)
        blen, iface, caplen, wirelen = h[:, 1], h[:, 2], h[:, 5], h[:, 6]
        trail = _gather(arr, rec + blen - 4, _AR4, e + "u4").reshape(-1).astype(_I64)
        bad = (blen % 4 != 0) | (trail != blen) | (caplen > blen - 32) | (iface >= nif)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            if iface[i] >= nif:
                raise self.err(f"packet on undefined interface {int(iface[i])}")
            raise self.err(f"corrupt block at byte {base + int(rec[i])}")
        ticks = (h[:, 3] << 32) | h[:, 4]
        ts = np.empty(rec.shape[0], _I64)
        kinds = {(i.pow2, i.exp, i.tsoffset) for i in self.ifaces}
        if len(kinds) == 1:
            pow2, exp, tso = kinds.pop()
            ts = _ticks_to_ns(ticks, pow2, exp) + tso * _NS
        else:
            for k, ifc in enumerate(self.ifaces):
                m = iface == k
                if m.any():
                    ts[m] = _ticks_to_ns(ticks[m], ifc.pow2, ifc.exp) + ifc.tsoffset * _NS
        data_off = rec + 28
        keep = None
        if extras:
            x = np.array([(o, d, c, w, 0 if t is None else t, i) for o, d, c, w, t, i in extras], _I64)
            pos = np.concatenate([rec, x[:, 0]])
            order = np.argsort(pos, kind="stable")
            data_off = np.concatenate([data_off, x[:, 1]])[order]
            caplen = np.concatenate([caplen, x[:, 2]])[order]
            wirelen = np.concatenate([wirelen, x[:, 3]])[order]
            ts = np.concatenate([ts, x[:, 4]])[order]
            iface = np.concatenate([iface, x[:, 5]])[order]
            if (iface < 0).any():
                keep = iface >= 0
                iface = np.where(keep, iface, 0)
        lt = lt_of[iface] if nif else np.zeros(iface.shape[0], np.int32)
        if keep is not None:
            lt = np.where(keep, lt, 1)
        unknown = ~np.isin(lt, np.fromiter(SUPPORTED_LINKTYPES, np.int32))
        if unknown.any():
            raise self.err(f"unknown link type {int(lt[np.flatnonzero(unknown)[0]])}")
        pieces.append(self.finish(arr, data_off, caplen, wirelen, ts, lt, keep))
        offs.clear()
        extras.clear()


def _file_pieces(path: Path, file_id: int, warn: Callable[[str], None],
                 progress: Callable[[int], None]) -> Iterator[_Piece]:
    """Every record of one capture file, as pieces of at most one block each."""
    name = str(path)
    f = _open(path)
    with f:
        stream = _Stream(f, progress)
        chunks = stream.chunks()
        buf = next(chunks, b"")
        if not buf:
            if stream.truncated_gzip:
                raise CaptureError(name, "corrupt or truncated gzip stream")
            raise CaptureError(name, "empty file")
        # the header may straddle chunks only in pathological gzip cases: read a bit more
        while len(buf) < 32:
            more = next(chunks, b"")
            if not more:
                break
            buf += more
        if not _looks_like_capture(buf):
            raise CaptureError(name, "not a pcap or pcapng file")
        if int.from_bytes(buf[:4], "little") == _SHB:
            parser: _Parser = _PcapngParser(name, file_id)
        else:
            parser = _PcapParser(name, file_id)
        pos = parser.header(buf)
        base = 0  # file (decompressed) offset of buf[0]
        while True:
            pieces, pos = parser.walk(buf, pos, base)
            yield from (p for p in pieces if len(p))
            more = next(chunks, b"")
            if not more:
                break
            parser.check_next(buf, pos)
            base += pos
            buf = buf[pos:] + more if pos < len(buf) else more
            pos = 0
        if pos < len(buf):
            parser.check_next(buf, pos)
            warn(f"{name}: truncated record at byte {base + pos}; "
                 f"kept the {parser.packets} packets before it")
        elif stream.truncated_gzip:
            warn(f"{name}: truncated gzip stream at byte {base + pos}; "
                 f"kept the {parser.packets} packets before it")


# ----------------------------------------------------------------------------- merge and batching

def _concat(parts: list[_Piece]) -> _Piece:
    """One piece from several, copying only the byte range each part uses."""
    if len(parts) == 1:
        return parts[0]
    datas, offs = [], []
    base = 0
    for p in parts:
        if not len(p):
            continue
        lo = int(p.off.min())
        hi = int((p.off + p.caplen).max())
        datas.append(p.data[lo:hi])
        offs.append(p.off - lo + base)
        base += hi - lo
    cat = np.concatenate
    return _Piece(cat(datas) if datas else np.zeros(0, np.uint8), cat(offs),
                  cat([p.caplen for p in parts]), cat([p.wirelen for p in parts]),
                  cat([p.ts for p in parts]), cat([p.linktype for p in parts]),
                  cat([p.frame for p in parts]), cat([p.file_id for p in parts]),
                  cat([p.key for p in parts]))


def _merged(sources: list[Iterator[_Piece]]) -> Iterator[_Piece]:
    """Stable k-way merge on (key, file index, position). A record is released once no file
    that still has records to read could produce one that sorts before it."""
    k = len(sources)
    if k == 1:
        yield from sources[0]
        return
    bufs: list[deque[_Piece]] = [deque() for _ in range(k)]
    active = set(range(k))
    while True:
        for f in sorted(active):
            if not bufs[f]:
                p = next(sources[f], None)
                if p is None:
                    active.discard(f)
                else:
                    bufs[f].append(p)
        # (last key buffered, file) of each active file: a lower bound of its future records
        bounds = sorted((int(bufs[f][-1].key[-1]), f) for f in active)
        taken: list[_Piece] = []
        for g in range(k):
            if not bufs[g]:
                continue
            lim = next((b for b in bounds if b[1] != g), None)
            while bufs[g]:
                p = bufs[g][0]
                if lim is None:
                    cut = len(p)
                else:
                    side = "right" if g < lim[1] else "left"
                    cut = int(np.searchsorted(p.key, lim[0], side=side))
                if cut == len(p):
                    taken.append(bufs[g].popleft())
                    continue
                if cut:
                    taken.append(p.take(slice(0, cut)))
                    bufs[g][0] = p.take(slice(cut, None))
                break
        if taken:
            run = _concat(taken)
            if len({int(p.file_id[0]) for p in taken}) > 1:
                order = np.argsort(run.key, kind="stable")
                run = _Piece(run.data, run.off[order], run.caplen[order], run.wirelen[order],
                             run.ts[order], run.linktype[order], run.frame[order],
                             run.file_id[order], run.key[order])
            yield run
        if not active and not any(bufs):
            return


def _batch(p: _Piece, paths: tuple[str, ...]) -> RawBatch:
    lo = int(p.off.min())
    hi = int((p.off + p.caplen).max())
    return RawBatch(data=p.data[lo:hi], offset=p.off - lo, caplen=p.caplen, wirelen=p.wirelen,
                    ts=p.ts, linktype=p.linktype, file_id=p.file_id, frame=p.frame, paths=paths)


def read_batches(paths: Sequence[str | Path], chunk_packets: int = 65536,
                 on_warning: Callable[[str], None] | None = None,
                 on_progress: Callable[[int], None] | None = None) -> Iterator[RawBatch]:
    """Every record of the captures in `paths`, merged in packet-time order, as RawBatch objects
    of at most `chunk_packets` records. Raises CaptureError for an unreadable input."""
    if chunk_packets < 1:
        raise ValueError("chunk_packets must be >= 1")
    files = iter_files(paths)
    names = tuple(str(p) for p in files)
    warn = on_warning or log.warning
    total = 0

    def progress(n: int) -> None:
        nonlocal total
        total += n
        if on_progress is not None:
            on_progress(total)

    for p in files:  # fail early on files that cannot be opened at all
        _open(p).close()
    sources = [_file_pieces(p, i, warn, progress) for i, p in enumerate(files)]
    pending: list[_Piece] = []
    count = 0
    for run in _merged(sources):
        pending.append(run)
        count += len(run)
        while count >= chunk_packets:
            whole = _concat(pending) if len(pending) > 1 else pending[0]
            yield _batch(whole.take(slice(0, chunk_packets)), names)
            rest = whole.take(slice(chunk_packets, None))
            pending = [rest] if len(rest) else []
            count = len(rest)
    if count:
        yield _batch(_concat(pending), names)


# ----------------------------------------------------------------------------- resumable pcapng

@dataclass
class PcapngCursor:
    """Where an incremental reader of one pcapng file stands, enough to resume in another
    process: the byte offset of the next unread block and the parser state that blocks after it
    depend on (byte order, the section's interfaces, frame numbers used)."""

    offset: int = 0
    frames: int = 0
    packets: int = 0
    order: str = "<"
    section: bool = False
    interfaces: list[tuple[int, int, bool, int, int]] = field(default_factory=list)
    last_ts: int = 0
    isb: dict[int, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"offset": self.offset, "frames": self.frames, "packets": self.packets,
                "order": self.order, "section": self.section,
                "interfaces": [list(i) for i in self.interfaces], "last_ts": self.last_ts,
                "isb": {str(k): v for k, v in self.isb.items()}}

    @classmethod
    def from_json(cls, d: dict) -> PcapngCursor:
        return cls(offset=int(d["offset"]), frames=int(d["frames"]), packets=int(d.get("packets", 0)),
                   order=">" if d.get("order") == ">" else "<", section=bool(d.get("section")),
                   interfaces=[(int(a), int(b), bool(c), int(x), int(y)) for a, b, c, x, y in d.get("interfaces", [])],
                   last_ts=int(d.get("last_ts", 0)),
                   isb={int(k): {str(n): int(v) for n, v in s.items()} for k, s in d.get("isb", {}).items()})


def read_pcapng_from(buf: bytes, cursor: PcapngCursor, path: str = "", file_id: int = 0,
                     ) -> tuple[RawBatch | None, PcapngCursor]:
    """Records of the complete blocks at the start of `buf`, which holds a pcapng file's bytes
    from `cursor.offset` on, and the cursor after the last complete block (a block cut short at
    the end of `buf` is left for the next call). Raises CaptureError on a corrupt block; the
    caller can then read up to CaptureError's offset with a smaller `buf`."""
    parser = _PcapngParser(path, file_id)
    parser.count = cursor.frames
    parser.packets = cursor.packets
    parser.last_ts = cursor.last_ts
    parser.isb = {k: dict(v) for k, v in cursor.isb.items()}
    if cursor.section:
        parser.section_seen = True
        parser._set_order(cursor.order)
        parser.ifaces = [_Iface(*i) for i in cursor.interfaces]
    elif cursor.offset == 0 and len(buf) >= 4 and int.from_bytes(buf[:4], "little") != _SHB:
        raise CaptureError(path, "not a pcapng file")
    pieces, used = parser.walk(buf, 0, cursor.offset)
    pieces = [p for p in pieces if len(p)]
    new = PcapngCursor(offset=cursor.offset + used, frames=parser.count, packets=parser.packets,
                       order=parser.e, section=parser.section_seen,
                       interfaces=[(i.linktype, i.snaplen, i.pow2, i.exp, i.tsoffset) for i in parser.ifaces],
                       last_ts=parser.last_ts, isb=parser.isb)
    if not pieces:
        return None, new
    return _batch(_concat(pieces), (path,)), new


def pcapng_block_at(buf: bytes, pos: int, order: str = "<") -> int | None:
    """Length of a plausible block starting at `pos` of `buf` (length fields agree, sane size),
    None otherwise: how a reader finds its footing again after corruption."""
    if pos + 12 > len(buf):
        return None
    blen = struct.unpack_from(order + "I", buf, pos + 4)[0]
    if blen < 12 or blen % 4 or blen > MAX_PCAPNG_BLOCK or pos + blen > len(buf):
        return None
    if struct.unpack_from(order + "I", buf, pos + blen - 4)[0] != blen:
        return None
    return blen
