"""Follow dumpcap's ring of pcapng files as they grow, and resume exactly where a reader stopped.

dumpcap `-b filesize:K -b files:N -w DIR/PREFIX.pcapng` writes DIR/PREFIX_00001_YYYYmmddHHMMSS.pcapng,
then _00002_..., deleting the oldest once N exist. The follower reads the complete blocks of the
oldest file not yet finished (plantwatch.core.capture.files.read_pcapng_from), remembers for each file its identity
(name and inode), the byte offset of the next unread block, the frame numbers used and the
section's interface table (a PcapngCursor), and hands that out as JSON so a restarted process
continues at the same byte: nothing is read twice, nothing is skipped.

A file is complete once a later file of the ring exists (or the writer has stopped): then a block
cut short at its end is truncation (a warning), where in the newest file it is a block dumpcap has
not finished writing yet. A corrupt block is reported and skipped: the reader looks for the next
plausible block and reads on. Files that rotation removed before they were read to the end, and
gaps in the ring's sequence numbers (files created and removed between two scans), are reported as
missed: they are the pipeline's drops.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plantwatch.core.capture.batch import CaptureError, RawBatch
from plantwatch.core.capture.files import read_batches
from plantwatch.core.capture.pcapng import PcapngCursor, pcapng_block_at, read_pcapng_from
from plantwatch.core.capture.records import clamp_warning

log = logging.getLogger(__name__)

READ_BYTES = 4 << 20          # bytes read from a ring file at a time
RING_NAME = re.compile(r"^(?P<prefix>.+)_(?P<seq>\d{5,})_(?P<stamp>\d{14})\.pcapng$")
_RESYNC_TYPES = {1, 2, 3, 5, 6, 0x0A0D0D0A}


def ring_key(name: str) -> tuple[str, int, str] | None:
    """Sort key of a ring file name (prefix, sequence number, stamp); None for other files."""
    m = RING_NAME.match(name)
    if m is None:
        return None
    return (m["prefix"], int(m["seq"]), m["stamp"])


@dataclass
class RingFile:
    name: str
    ino: int
    cursor: PcapngCursor = field(default_factory=PcapngCursor)
    capture_id: int = 0
    done: bool = False
    size: int = 0                 # size at the last scan
    first_ts: int | None = None
    last_ts: int | None = None
    warnings: list[str] = field(default_factory=list)
    complete_seen: bool = False   # read to `size` after the writer had finished it

    @property
    def key(self) -> tuple[str, int, str]:
        k = ring_key(self.name)
        assert k is not None
        return k

    def to_json(self) -> dict:
        return {"name": self.name, "ino": self.ino, "cursor": self.cursor.to_json(),
                "capture_id": self.capture_id, "done": self.done, "size": self.size,
                "first_ts": self.first_ts, "last_ts": self.last_ts, "warnings": self.warnings[-20:]}

    @classmethod
    def from_json(cls, d: dict) -> RingFile:
        return cls(name=str(d["name"]), ino=int(d["ino"]), cursor=PcapngCursor.from_json(d["cursor"]),
                   capture_id=int(d.get("capture_id", 0)), done=bool(d.get("done")),
                   size=int(d.get("size", 0)), first_ts=d.get("first_ts"), last_ts=d.get("last_ts"),
                   warnings=[str(w) for w in d.get("warnings", [])])


@dataclass(frozen=True, slots=True)
class Missed:
    """A ring file that rotation removed before it was read to the end."""
    name: str
    unread_bytes: int | None      # None: never seen, so its size is unknown
    packets_read: int


def _concat(batches: list[RawBatch]) -> RawBatch | None:
    batches = [b for b in batches if b is not None and len(b)]
    if not batches:
        return None
    if len(batches) == 1:
        return batches[0]
    datas, offs, base = [], [], 0
    for b in batches:
        datas.append(np.asarray(b.data))
        offs.append(b.offset + base)
        base += int(b.data.shape[0])
    cat = np.concatenate
    return RawBatch(data=cat(datas), offset=cat(offs), caplen=cat([b.caplen for b in batches]),
                    wirelen=cat([b.wirelen for b in batches]), ts=cat([b.ts for b in batches]),
                    linktype=cat([b.linktype for b in batches]), file_id=cat([b.file_id for b in batches]),
                    frame=cat([b.frame for b in batches]), paths=batches[0].paths)


# Layout of RingFollower.state(); a state without "version" was saved before versions and has
# the layout of version 1. A newer one is refused (CaptureError, one line), never half-read.
RING_STATE_VERSION = 1


class RingFollower:
    """The reader of one ring directory. Not thread-safe: one follower per sensor."""

    def __init__(self, ring_dir: str | Path, state: dict | None = None,
                 on_warning: Callable[[str], None] | None = None,
                 on_missed: Callable[[Missed], None] | None = None,
                 read_bytes: int = READ_BYTES) -> None:
        self.dir = Path(ring_dir)
        self.warn = on_warning or log.warning
        self.on_missed = on_missed
        self.read_bytes = read_bytes
        self.files: dict[str, RingFile] = {}
        self.last_seq: dict[str, int] = {}     # highest sequence number seen, per prefix
        self.missed: int = 0                   # files missed since the store was created
        self.missed_bytes: int = 0
        self._skipped = False
        if state:
            version = state.get("version", 1)
            if not isinstance(version, int) or not 1 <= version <= RING_STATE_VERSION:
                raise CaptureError(str(self.dir), f"the store's ring positions have layout version {version!r}, "
                                                  f"this plantwatch reads {RING_STATE_VERSION}")
            for d in state.get("files", []):
                rf = RingFile.from_json(d)
                self.files[rf.name] = rf
            self.last_seq = {str(k): int(v) for k, v in state.get("last_seq", {}).items()}
            self.missed = int(state.get("missed", 0))
            self.missed_bytes = int(state.get("missed_bytes", 0))

    # --- persistence -------------------------------------------------------------------------

    def state(self) -> dict:
        return {"version": RING_STATE_VERSION, "files": [rf.to_json() for rf in sorted(self.files.values(), key=lambda r: r.key)],
                "last_seq": self.last_seq, "missed": self.missed, "missed_bytes": self.missed_bytes}

    # --- the directory ----------------------------------------------------------------------

    def scan(self) -> list[Missed]:
        """Look at the directory: new files, files gone (missed when not read to the end)."""
        present: dict[str, os.stat_result] = {}
        try:
            with os.scandir(self.dir) as it:
                for e in it:
                    if ring_key(e.name) is not None:
                        try:
                            present[e.name] = e.stat()
                        except FileNotFoundError:
                            continue
        except FileNotFoundError:
            present = {}
        missed: list[Missed] = []
        for name in list(self.files):
            rf = self.files[name]
            st = present.get(name)
            if st is None or st.st_ino != rf.ino:
                del self.files[name]
                if not rf.done and not (rf.complete_seen and rf.cursor.offset >= rf.size):
                    missed.append(Missed(name, max(rf.size - rf.cursor.offset, 0), rf.cursor.packets))
        for name in sorted(present, key=lambda n: ring_key(n)):
            st = present[name]
            prefix, seq, _ = ring_key(name)
            if name not in self.files:
                last = self.last_seq.get(prefix)
                if last is not None and seq <= last:
                    continue  # a file already finished and forgotten
                if last is not None and seq > last + 1:
                    for s in range(last + 1, seq):
                        missed.append(Missed(f"{prefix}_{s:05d}_*.pcapng", None, 0))
                self.files[name] = RingFile(name, st.st_ino)
                self.last_seq[prefix] = max(self.last_seq.get(prefix, 0), seq)
            self.files[name].size = st.st_size
        # forget finished files that are gone already (above) and keep the table small
        for m in missed:
            self.missed += 1
            self.missed_bytes += m.unread_bytes or 0
            if self.on_missed is not None:
                self.on_missed(m)
        return missed

    def pending(self) -> list[RingFile]:
        """Files not finished, oldest first."""
        return sorted((rf for rf in self.files.values() if not rf.done), key=lambda r: r.key)

    def newest(self) -> RingFile | None:
        return max(self.files.values(), key=lambda r: r.key, default=None)

    def bytes_behind(self) -> int:
        return sum(max(rf.size - rf.cursor.offset, 0) for rf in self.files.values() if not rf.done)

    def prune(self) -> None:
        """Forget finished files beyond the newest few (their names stay covered by last_seq)."""
        done = sorted((rf for rf in self.files.values() if rf.done), key=lambda r: r.key)
        for rf in done[:-4]:
            del self.files[rf.name]

    # --- reading ----------------------------------------------------------------------------

    def complete(self, rf: RingFile, writer_active: bool) -> bool:
        """The writer has finished with `rf`: a later file exists, or nobody writes any more."""
        if not writer_active:
            return True
        newest = self.newest()
        return newest is not None and newest.key > rf.key

    def read(self, rf: RingFile, writer_active: bool, file_id: int = 0) -> RawBatch | None:
        """The complete records of `rf` not read yet (at most about read_bytes of them, more
        when corruption was skipped); marks `rf` done once it is complete and read to the end."""
        path = self.dir / rf.name
        complete = self.complete(rf, writer_active)  # decided before reading: no race with the writer
        out: list[RawBatch] = []
        clamped = rf.cursor.clamped
        for _ in range(64):
            try:
                with open(path, "rb", buffering=0) as f:
                    st = os.fstat(f.fileno())
                    if st.st_ino != rf.ino:
                        raise FileNotFoundError
                    rf.size = st.st_size
                    rf.complete_seen = complete
                    f.seek(rf.cursor.offset)
                    buf = f.read(self.read_bytes)
            except FileNotFoundError:
                break  # rotated away: the next scan reports it
            except OSError as e:
                self._warn(rf, f"{path}: cannot read ({e.strerror or e}); skipped the rest of the file")
                rf.done = True
                break
            self._skipped = False
            b = self._parse(rf, buf, complete, path, file_id)
            if b is not None:
                out.append(b)
            if self._skipped and rf.cursor.offset < rf.size:
                continue  # read on after the corrupt bytes
            if complete and len(buf) < self.read_bytes and not rf.done:
                if rf.cursor.offset < rf.size:
                    self._warn(rf, f"{path}: truncated block at byte {rf.cursor.offset}; "
                                   f"kept the {rf.cursor.packets} packets before it")
                rf.done = True
            break
        if rf.cursor.clamped > clamped:
            self._warn(rf, clamp_warning(str(path), rf.cursor.clamped - clamped))
        batch = _concat(out)
        if batch is not None and len(batch):
            lo, hi = int(batch.ts.min()), int(batch.ts.max())
            rf.first_ts = lo if rf.first_ts is None else min(rf.first_ts, lo)
            rf.last_ts = hi if rf.last_ts is None else max(rf.last_ts, hi)
        return batch

    def _warn(self, rf: RingFile, msg: str) -> None:
        rf.warnings.append(msg)
        self.warn(msg)

    def _parse(self, rf: RingFile, buf: bytes, complete: bool, path: Path,
               file_id: int) -> RawBatch | None:
        try:
            batch, rf.cursor = read_pcapng_from(buf, rf.cursor, str(path), file_id)
            return batch
        except CaptureError:
            pass
        # corruption somewhere in buf: read block by block up to it, then find footing again
        out: list[RawBatch] = []
        pos = 0
        problem = "corrupt block"
        while pos < len(buf):
            blen = pcapng_block_at(buf, pos, rf.cursor.order)
            if blen is None and pos == 0 and rf.cursor.offset == 0:
                blen = pcapng_block_at(buf, pos, ">")
            if blen is None:
                if not complete and _partial_tail(buf, pos, rf.cursor.order):
                    return _concat(out)  # the writer is still writing that block
                break
            try:
                b, cur = read_pcapng_from(buf[pos:pos + blen], rf.cursor, str(path), file_id)
            except CaptureError as e:
                problem = e.problem
                break
            if cur.offset != rf.cursor.offset + blen:
                break
            rf.cursor = cur
            if b is not None:
                out.append(b)
            pos += blen
        if pos >= len(buf):
            return _concat(out)
        bad = rf.cursor.offset
        nxt = self._resync(buf, pos + 4, rf)
        if nxt is None:
            if complete or len(buf) >= self.read_bytes:
                skip = len(buf) - pos if not complete else max(rf.size - bad, len(buf) - pos)
                self._warn(rf, f"{path}: {problem} at byte {bad}; no readable block after it in "
                               f"{skip} bytes: skipped")
                rf.cursor.offset = bad + (len(buf) - pos)
                if complete and len(buf) < self.read_bytes:
                    rf.cursor.offset = max(rf.cursor.offset, rf.size)
            return _concat(out)  # an incomplete file: wait for more bytes before deciding
        self._skipped = True
        self._warn(rf, f"{path}: {problem} at byte {bad}; skipped {nxt - pos} bytes, "
                       f"reading on from byte {bad + nxt - pos}")
        rf.cursor.offset = bad + (nxt - pos)
        rf.cursor.frames += 1  # the skipped bytes count as one frame (usually one broken block)
        return _concat(out)

    @staticmethod
    def _resync(buf: bytes, start: int, rf: RingFile) -> int | None:
        """Offset in buf of the next plausible block (4-aligned, known type, consistent
        lengths, and followed by another plausible block or the end of buf)."""
        e = rf.cursor.order
        nif = len(rf.cursor.interfaces)
        start += (-start) % 4
        if start >= len(buf) - 12:
            return None
        words = np.frombuffer(buf, dtype=e + "u4", count=(len(buf) - start) // 4, offset=start)
        cand = np.flatnonzero(np.isin(words, np.array(sorted(_RESYNC_TYPES), dtype=np.uint32)))
        for c in cand[:100000]:
            p = start + 4 * int(c)
            blen = pcapng_block_at(buf, p, e)
            if blen is None:
                continue
            t = words[c]
            if t == 6 and (blen < 32 or struct.unpack_from(e + "I", buf, p + 8)[0] >= max(nif, 1)):
                continue
            q = p + blen
            if q == len(buf) or pcapng_block_at(buf, q, e) is not None or len(buf) - q < 12:
                return p
        return None


def _partial_tail(buf: bytes, pos: int, order: str) -> bool:
    """The bytes from pos look like the beginning of a block the writer has not finished."""
    if len(buf) - pos < 8:
        return True
    blen = struct.unpack_from(order + "I", buf, pos + 4)[0]
    return 12 <= blen <= (64 << 20) and blen % 4 == 0 and pos + blen > len(buf)


def packets_written(ring_dir: Path, prefix: str, known: dict[str, RingFile]) -> int:
    """Packets a writer with file prefix `prefix` got into the ring: those of its files still
    there (read through, a block cut short at the end not counted) and, for files rotated away,
    what the follower had read of them."""
    total = 0
    present = set()
    for p in sorted(ring_dir.glob(f"{prefix}_*.pcapng")):
        present.add(p.name)
        try:
            total += sum(len(b) for b in read_batches([p], on_warning=lambda _m: None))
        except (CaptureError, OSError):
            rf = known.get(p.name)
            total += rf.cursor.packets if rf is not None else 0
    total += sum(rf.cursor.packets for name, rf in known.items()
                 if name.startswith(prefix + "_") and name not in present)
    return total
