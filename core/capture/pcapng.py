"""pcapng files: sections, interfaces, Enhanced/Simple/obsolete Packet Blocks, statistics; and
the resumable reader the sensor uses on a ring file that is still growing (PcapngCursor).

- Simple Packet Blocks carry no timestamp: they get the last timestamp seen in the file (in
  practice the previous packet of their section; 0 if there was none yet) and interface 0's link
  type. tshark shows no time for them.
- Custom blocks and systemd journal blocks are not packets but Wireshark numbers them as frames:
  they use up a frame number, so `frame` stays equal to tshark's frame.number.
- Interfaces with an unsupported link type are accepted at IDB time; the CaptureError
  "unknown link type N" is raised when a packet on such an interface is met.
- Timestamp fields out of what int64 ns hold are clamped and counted (records.ticks_to_ns).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from plantwatch.core.capture.batch import SUPPORTED_LINKTYPES, CaptureError, RawBatch
from plantwatch.core.capture.records import (
    I64,
    Parser,
    Piece,
    concat_pieces,
    gather,
    ticks_to_ns,
    to_batch,
)

MAX_PCAPNG_BLOCK = 64 << 20          # larger pcapng blocks are treated as corruption
SHB = 0x0A0D0D0A
_BOM = 0x1A2B3C4D
# pcapng blocks that carry no packet but that Wireshark numbers as frames (custom blocks,
# systemd journal export): they use up a frame number so ours stay equal to frame.number.
_PHANTOM_BLOCKS = frozenset({0x00000BAD, 0x40000BAD, 9})
_ISB_COUNTERS = {4: "ifrecv", 5: "ifdrop", 6: "filteraccept", 7: "osdrop", 8: "usrdeliv"}
_AR28 = np.arange(28, dtype=I64)
_AR4 = np.arange(4, dtype=I64)


@dataclass(slots=True)
class Interface:
    linktype: int
    snaplen: int
    pow2: bool
    exp: int
    tsoffset: int


class _EpbScan:
    """The well-formed Enhanced Packet Blocks a buffer may hold, found in one numpy pass: a word 6
    at a block-aligned offset, with a length >= 32, a multiple of 4, that fits the buffer and is
    repeated in the block's last word. Packet bytes can look like one too; run() only follows
    lengths from a block it starts at, so those are stepped over."""

    def __init__(self, buf: bytes, start: int, e: str) -> None:
        self.e = e
        n = len(buf)
        r = start & 3   # blocks are whole words: every block offset is start modulo 4
        w = np.frombuffer(buf, e + "u4", count=max(n - r, 0) // 4, offset=min(r, n))
        k = np.flatnonzero(w[:-1] == 6)
        blen = w[k + 1].astype(I64)
        pos = r + 4 * k
        ok = (blen >= 32) & (blen % 4 == 0) & (pos + blen <= n)
        k, blen, pos = k[ok], blen[ok], pos[ok]
        ok = w[k + (blen >> 2) - 1] == blen
        self.pos, self.end = pos[ok], pos[ok] + blen[ok]
        m = self.pos.size
        j = np.searchsorted(self.pos, self.end)
        found = self.pos[np.minimum(j, m - 1)] == self.end if m else np.zeros(0, bool)
        self.link = np.where(found, j, -1)   # candidate that starts where each one ends
        self.breaks = np.flatnonzero(self.link != np.arange(1, m + 1))

    def run(self, off: int) -> tuple[np.ndarray, int]:
        """Offsets of the chain of well-formed EPBs that starts at `off`, and where it ends."""
        pos = self.pos
        i = int(np.searchsorted(pos, off))
        if i == pos.size or pos[i] != off:
            return _NONE, off
        parts = []
        while True:
            # the last candidate is always a break: its link is -1 or before it
            b = int(self.breaks[np.searchsorted(self.breaks, i)])
            parts.append(pos[i:b + 1])
            if self.link[b] < 0:
                return (parts[0] if len(parts) == 1 else np.concatenate(parts)), int(self.end[b])
            i = int(self.link[b])   # the candidates in between lie inside block b


_NONE = np.zeros(0, I64)


class PcapngParser(Parser):
    def __init__(self, path: str, file_id: int) -> None:
        super().__init__(path, file_id)
        self.e = "<"
        self.ifaces: list[Interface] = []
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
            if struct.unpack_from("<I", buf, pos)[0] == SHB:
                bom = struct.unpack_from("<I", buf, pos + 8)[0]
                e = "<" if bom == _BOM else ">"
            blen = struct.unpack_from(e + "I", buf, pos + 4)[0]
            if blen > MAX_PCAPNG_BLOCK or blen < 12 or blen % 4:
                raise self.err(f"corrupt block at byte {pos}: length {blen}")

    def walk(self, buf: bytes, start: int, base: int) -> tuple[list[Piece], int]:
        n = len(buf)
        pieces: list[Piece] = []
        recs: list[np.ndarray] = []   # offsets of this section's EPBs so far, in runs
        extras: list[tuple[int, int, int, int, int | None, int]] = []
        off = start
        if not self.section_seen:
            self._set_order("<")
        u2 = self.u2
        scan: _EpbScan | None = None
        while True:
            # fast path: runs of well-formed Enhanced Packet Blocks found with numpy, then one by
            # one those it leaves (validated for the whole block afterwards)
            if scan is None or scan.e != self.e:
                scan = _EpbScan(buf, start, self.e)
            run, off = scan.run(off)
            if run.size:
                recs.append(run)
            one: list[int] = []
            append = one.append
            try:
                while True:
                    t, blen = u2(buf, off)
                    nxt = off + blen
                    if t != 6 or nxt > n or blen < 32:
                        break
                    append(off)
                    off = nxt
            except struct.error:
                t = -1  # fewer than 8 bytes left
            if one:
                recs.append(np.array(one, dtype=I64))
            if t == -1 or off + 12 > n:
                break
            # slow path: any other block
            if t == SHB:
                bom = struct.unpack_from("<I", buf, off + 8)[0]
                e = "<" if bom == _BOM else ">" if bom == 0x4D3C2B1A else None
                if e is None:
                    self._flush(buf, recs, extras, pieces, base)
                    raise self.err(f"corrupt section header at byte {base + off}")
                blen = struct.unpack_from(e + "I", buf, off + 4)[0]
            self._check_len(buf, recs, extras, pieces, base, off, blen)
            if off + blen > n:
                break
            if t == SHB:
                self._flush(buf, recs, extras, pieces, base)
                recs = []
                extras = []
                self._set_order(e)
                u2 = self.u2
                self.ifaces = []
                self.section_seen = True
            elif not self.section_seen:
                raise self.err("not a pcap or pcapng file")
            elif t == 1:
                self._idb(buf, off, blen)
            elif t == 3:
                self._spb(buf, off, blen, recs, extras)
            elif t == 2:
                self._pb(buf, off, blen, extras)
            elif t in _PHANTOM_BLOCKS:
                extras.append((off, off, 0, 0, None, -1))
            elif t == 5:
                self._isb(buf, off, blen)
            elif t == 6:  # an EPB shorter than its fixed fields
                self._flush(buf, recs, extras, pieces, base)
                raise self.err(f"corrupt block at byte {base + off}: length {blen}")
            off += blen
        self._flush(buf, recs, extras, pieces, base)
        return pieces, off

    def _check_len(self, buf, recs, extras, pieces, base, off, blen) -> None:
        if blen < 12 or blen % 4 or blen > MAX_PCAPNG_BLOCK:
            self._flush(buf, recs, extras, pieces, base)  # earlier errors first
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
            if code == 0 or p + 4 + ln > end:
                break  # the end, or an option running past the block: the rest is not trusted
            if code == 9 and ln >= 1:
                r = buf[p + 4]
                pow2, exp = bool(r & 0x80), r & 0x7F
            elif code == 14 and ln >= 8:
                tsoffset = struct.unpack_from(e + "q", buf, p + 4)[0]
            p += 4 + ln + ((-ln) % 4)
        self.ifaces.append(Interface(linktype, snaplen, pow2, exp, tsoffset))

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

    def _ts_of(self, iface: int, hi: int, lo: int, count: bool = True) -> int:
        if iface >= len(self.ifaces):
            raise self.err(f"packet on undefined interface {iface}")
        ifc = self.ifaces[iface]
        ns, out = ticks_to_ns(np.array([hi]), np.array([lo]), ifc.pow2, ifc.exp, ifc.tsoffset)
        if count:
            self.clamped += int(out[0])
        return int(ns[0])

    def _last_ts(self, buf: bytes, recs: list[np.ndarray], extras: list) -> int:
        """Timestamp of the latest timestamped record so far in this section."""
        cand = [(e[0], e[4]) for e in reversed(extras) if e[4] is not None][:1]
        if recs:
            o = int(recs[-1][-1])
            iface, hi, lo = struct.unpack_from(self.e + "III", buf, o + 8)
            cand.append((o, self._ts_of(iface, hi, lo, count=False)))
        if not cand:
            return self.last_ts
        return max(cand)[1]

    def _spb(self, buf: bytes, off: int, blen: int, recs: list[np.ndarray], extras: list) -> None:
        if not self.ifaces:
            raise self.err("packet on undefined interface 0")
        wirelen = struct.unpack_from(self.e + "I", buf, off + 8)[0]
        cap = min(wirelen, blen - 16)
        if self.ifaces[0].snaplen:
            cap = min(cap, self.ifaces[0].snaplen)
        ts = self._last_ts(buf, recs, extras)
        extras.append((off, off + 12, cap, wirelen, ts, 0))

    def _pb(self, buf: bytes, off: int, blen: int, extras: list) -> None:
        if blen < 32:
            raise self.err(f"corrupt block at byte {off}: length {blen}")
        iface, _, hi, lo, cap, wirelen = struct.unpack_from(self.e + "HHIIII", buf, off + 8)
        if cap > blen - 32:
            raise self.err(f"corrupt block at byte {off}: captured length {cap}")
        extras.append((off, off + 28, cap, wirelen, self._ts_of(iface, hi, lo), iface))

    def _flush(self, buf: bytes, recs: list[np.ndarray], extras: list, pieces: list, base: int) -> None:
        """Turn the records of the current section collected from this block into a piece."""
        if not recs and not extras:
            return
        arr = np.frombuffer(buf, np.uint8)
        nif = len(self.ifaces)
        lt_of = np.array([i.linktype for i in self.ifaces] or [0], np.int32)
        rec = np.concatenate(recs) if recs else np.zeros(0, I64)
        blen, iface, hi, lo, caplen, wirelen, trail = self._epb_fields(buf, arr, rec)
        bad = (blen % 4 != 0) | (trail != blen) | (caplen > blen - 32) | (iface >= nif)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            if iface[i] >= nif:
                raise self.err(f"packet on undefined interface {int(iface[i])}")
            raise self.err(f"corrupt block at byte {base + int(rec[i])}")
        ts = np.empty(rec.shape[0], I64)
        kinds = {(i.pow2, i.exp, i.tsoffset) for i in self.ifaces}
        if len(kinds) == 1:
            ts, out = ticks_to_ns(hi, lo, *kinds.pop())
            self.clamped += int(out.sum())
        else:
            for k, ifc in enumerate(self.ifaces):
                m = iface == k
                if m.any():
                    ts[m], out = ticks_to_ns(hi[m], lo[m], ifc.pow2, ifc.exp, ifc.tsoffset)
                    self.clamped += int(out.sum())
        data_off = rec + 28
        keep = None
        if extras:
            x = np.array([(o, d, c, w, 0 if t is None else t, i) for o, d, c, w, t, i in extras], I64)
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
        recs.clear()
        extras.clear()

    def _epb_fields(self, buf: bytes, arr: np.ndarray, rec: np.ndarray) -> tuple[np.ndarray, ...]:
        """Block length, interface, timestamp words, captured and wire length and trailing length
        of the EPBs at `rec`: one gather per field from 32-bit words when all are aligned alike
        (a block whose length is no multiple of 4 misaligns those after it: they are bytes)."""
        e = self.e
        r = int(rec[0]) & 3 if rec.size else 0
        if ((rec & 3) != r).any():
            h = gather(arr, rec, _AR28, e + "u4").reshape(-1, 7).astype(I64)
            blen = h[:, 1]
            trail = gather(arr, rec + blen - 4, _AR4, e + "u4").reshape(-1).astype(I64)
            return blen, h[:, 2], h[:, 3], h[:, 4], h[:, 5], h[:, 6], trail
        w = np.frombuffer(buf, e + "u4", count=(len(buf) - r) // 4, offset=r)
        wi = (rec - r) >> 2
        blen, iface, hi, lo, caplen, wirelen = (w[wi + k] for k in range(1, 7))
        blen = blen.astype(I64)
        trail = w[wi + ((blen - 4) >> 2)].astype(I64)   # a misplaced one when blen % 4: bad anyway
        return blen, iface.astype(I64), hi, lo, caplen.astype(I64), wirelen.astype(I64), trail


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
    clamped: int = 0   # packets so far whose timestamp was clamped (records.ticks_to_ns)

    def to_json(self) -> dict:
        return {"offset": self.offset, "frames": self.frames, "packets": self.packets,
                "order": self.order, "section": self.section,
                "interfaces": [list(i) for i in self.interfaces], "last_ts": self.last_ts,
                "isb": {str(k): v for k, v in self.isb.items()}, "clamped": self.clamped}

    @classmethod
    def from_json(cls, d: dict) -> PcapngCursor:
        return cls(offset=int(d["offset"]), frames=int(d["frames"]), packets=int(d.get("packets", 0)),
                   order=">" if d.get("order") == ">" else "<", section=bool(d.get("section")),
                   interfaces=[(int(a), int(b), bool(c), int(x), int(y)) for a, b, c, x, y in d.get("interfaces", [])],
                   last_ts=int(d.get("last_ts", 0)),
                   isb={int(k): {str(n): int(v) for n, v in s.items()} for k, s in d.get("isb", {}).items()},
                   clamped=int(d.get("clamped", 0)))


def read_pcapng_from(buf: bytes, cursor: PcapngCursor, path: str = "", file_id: int = 0,
                     ) -> tuple[RawBatch | None, PcapngCursor]:
    """Records of the complete blocks at the start of `buf`, which holds a pcapng file's bytes
    from `cursor.offset` on, and the cursor after the last complete block (a block cut short at
    the end of `buf` is left for the next call). Raises CaptureError on a corrupt block; the
    caller can then read up to CaptureError's offset with a smaller `buf`."""
    parser = PcapngParser(path, file_id)
    parser.count = cursor.frames
    parser.packets = cursor.packets
    parser.last_ts = cursor.last_ts
    parser.isb = {k: dict(v) for k, v in cursor.isb.items()}
    parser.clamped = cursor.clamped
    if cursor.section:
        parser.section_seen = True
        parser._set_order(cursor.order)
        parser.ifaces = [Interface(*i) for i in cursor.interfaces]
    elif cursor.offset == 0 and len(buf) >= 4 and int.from_bytes(buf[:4], "little") != SHB:
        raise CaptureError(path, "not a pcapng file")
    pieces, used = parser.walk(buf, 0, cursor.offset)
    pieces = [p for p in pieces if len(p)]
    new = PcapngCursor(offset=cursor.offset + used, frames=parser.count, packets=parser.packets,
                       order=parser.e, section=parser.section_seen,
                       interfaces=[(i.linktype, i.snaplen, i.pow2, i.exp, i.tsoffset) for i in parser.ifaces],
                       last_ts=parser.last_ts, isb=parser.isb, clamped=parser.clamped)
    if not pieces:
        return None, new
    return to_batch(concat_pieces(pieces), (path,)), new


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
