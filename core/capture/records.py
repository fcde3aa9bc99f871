"""What the capture-file parsers share: a piece of parsed records, the parser base, and the one
conversion of a file's timestamp fields to int64 nanoseconds.

Timestamps are converted exactly (truncating, like Wireshark) whatever the interface's resolution
and offset say; a time outside 1970-01-01 .. 2262-04-11 (what int64 nanoseconds hold) is clamped
to that range and counted, so a hostile `if_tsresol`, `if_tsoffset` or timestamp word keeps its
packets and produces a warning instead of an OverflowError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plantwatch.core.capture.batch import CaptureError, RawBatch

I64 = np.int64
NS = 1_000_000_000
TS_MAX = (1 << 63) - 1   # the latest time int64 nanoseconds hold (2262-04-11)
_U64 = np.uint64


@dataclass(slots=True)
class Piece:
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

    def take(self, sl: slice | np.ndarray) -> Piece:
        return Piece(self.data, self.off[sl], self.caplen[sl], self.wirelen[sl], self.ts[sl],
                     self.linktype[sl], self.frame[sl], self.file_id[sl], self.key[sl])


def gather(arr: np.ndarray, at: np.ndarray, idx: np.ndarray, dtype: str) -> np.ndarray:
    """Fixed-size fields at byte offsets `at` of `arr`, as an (n, k) array of `dtype`."""
    return arr[at[:, None] + idx].view(dtype)


def concat_pieces(parts: list[Piece]) -> Piece:
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
    return Piece(cat(datas) if datas else np.zeros(0, np.uint8), cat(offs),
                 cat([p.caplen for p in parts]), cat([p.wirelen for p in parts]),
                 cat([p.ts for p in parts]), cat([p.linktype for p in parts]),
                 cat([p.frame for p in parts]), cat([p.file_id for p in parts]),
                 cat([p.key for p in parts]))


def to_batch(p: Piece, paths: tuple[str, ...]) -> RawBatch:
    lo = int(p.off.min())
    hi = int((p.off + p.caplen).max())
    return RawBatch(data=p.data[lo:hi], offset=p.off - lo, caplen=p.caplen, wirelen=p.wirelen,
                    ts=p.ts, linktype=p.linktype, file_id=p.file_id, frame=p.frame, paths=paths)


def _scale(t: np.ndarray, pow2: bool, exp: int) -> tuple[np.ndarray, np.ndarray]:
    """(floor of t * 10^-exp (or 2^-exp) seconds in ns as uint64, mask of values above TS_MAX)
    for unsigned 64-bit tick counts t; exact for every exponent 0..127."""
    zero = np.zeros(t.shape, _U64)
    if pow2:
        sec, frac = (zero, t) if exp >= 64 else (t >> _U64(exp), t & _U64((1 << exp) - 1))
        if exp <= 32:  # frac < 2^32: frac * 1e9 < 2^62
            fns = (frac * _U64(NS)) >> _U64(exp)
        else:
            # frac * 1e9 does not fit 64 bits: split frac = a * 2^32 + b; dropping the low 32
            # bits of b * 1e9 first does not change the floor of a division by 2^exp, exp >= 32
            x = (frac >> _U64(32)) * _U64(NS) + (((frac & _U64(0xFFFFFFFF)) * _U64(NS)) >> _U64(32))
            fns = x >> _U64(exp - 32) if exp - 32 < 64 else zero
        cap = TS_MAX // NS
        over = sec > _U64(cap)
        ns = np.minimum(sec, _U64(cap)) * _U64(NS) + fns
        return ns, over | (ns > _U64(TS_MAX))
    if exp <= 9:
        m = 10 ** (9 - exp)
        over = t > _U64(TS_MAX // m)
        return np.minimum(t, _U64(TS_MAX // m)) * _U64(m), over
    if exp - 9 >= 20:  # 10^20 > 2^64: every tick count is below one nanosecond
        return zero, np.zeros(t.shape, bool)
    ns = t // _U64(10 ** (exp - 9))
    return ns, ns > _U64(TS_MAX)


def ticks_to_ns(hi: np.ndarray, lo: np.ndarray, pow2: bool, exp: int, offset_s: int,
                ) -> tuple[np.ndarray, np.ndarray]:
    """pcapng timestamps (high and low 32-bit words of a tick count in units of 10^-exp or 2^-exp
    seconds, plus if_tsoffset seconds) as int64 ns since the epoch, truncating like Wireshark;
    and the mask of those outside [0, TS_MAX], which are clamped to it."""
    t = (hi.astype(_U64) << _U64(32)) | lo.astype(_U64)
    ns_u, big = _scale(t, pow2, exp)
    ns = np.where(big, _U64(0), ns_u).astype(I64)
    off = offset_s * NS
    if off > 0:
        off = min(off, TS_MAX)
        out = ns > TS_MAX - off
        res = np.minimum(ns, TS_MAX - off) + off
    elif off < 0:
        res = ns + max(off, -TS_MAX)   # ns >= 0: no wrap
        out = (res < 0) | (off < -TS_MAX)
        res = np.maximum(res, 0)
    else:
        res, out = ns, np.zeros(ns.shape, bool)
    # beyond int64 before the offset (a hostile file): exactly, with Python integers
    for i in np.flatnonzero(big).tolist():
        v = int(t[i])
        v = ((v * NS) >> exp if pow2 else v * NS // 10**exp) + offset_s * NS
        res[i] = min(max(v, 0), TS_MAX)
        out[i] = not 0 <= v <= TS_MAX
    return res, out


class Parser:
    """Base: turns a stream of decompressed chunks into pieces."""

    def __init__(self, path: str, file_id: int) -> None:
        self.path = path
        self.file_id = file_id
        self.count = 0        # frame numbers used so far
        self.packets = 0      # records yielded so far (count minus non-packet frames)
        self.last_ts = 0      # last timestamp (for pcapng SPBs and the merge key)
        self.key = -(1 << 62)
        self.clamped = 0      # packets whose time fields lie outside what int64 ns hold

    def err(self, problem: str) -> CaptureError:
        return CaptureError(self.path, problem)

    def finish(self, data: np.ndarray, off, caplen, wirelen, ts, linktype,
               keep: np.ndarray | None = None) -> Piece:
        n = off.shape[0]
        frame = np.arange(self.count + 1, self.count + 1 + n, dtype=I64)
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
        return Piece(data, off, caplen.astype(np.int32), wirelen.astype(np.int32), ts,
                     linktype, frame, np.full(n, self.file_id, np.int32), key)

    # subclasses: header(buf) -> bytes consumed; walk(buf, start, base) -> (pieces, consumed);
    # check_next(buf, pos) raises when the record at pos has an absurd length


def clamp_warning(path: str, n: int) -> str:
    return (f"{path}: {n} packets have timestamp fields (if_tsresol, if_tsoffset or the time "
            f"itself) outside 1970-01-01..2262-04-11; kept with the time clamped to that range")
