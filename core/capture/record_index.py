"""Reading a capture from a given frame on, for the packet view, without walking it from the start
every time.

For an uncompressed pcapng file the reader keeps, per file (path, size, modification time), a
cursor (byte offset plus the parser state the following blocks depend on: byte order,
interfaces, frames counted) at every block it read; a later read of frame N seeks to the last
cursor before N instead of starting at byte 0. The index lives in this process and grows with
each read, so the first look into a capture walks it (about 0.5 s for 325 MB) and later ones go
straight to their part. Other captures (pcap, gzip-compressed) are read from the start with
`read_batches`: a gzip stream cannot be entered in the middle.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from plantwatch.core.capture.batch import RawBatch
from plantwatch.core.capture.errors import CaptureError
from plantwatch.core.capture.files import BLOCK_SIZE, read_batches
from plantwatch.core.capture.pcapng import MAX_PCAPNG_BLOCK, SHB, PcapngCursor, read_pcapng_from

MAX_FILES = 64          # captures whose index is kept


@dataclass(slots=True)
class _Index:
    frames: list[int] = field(default_factory=lambda: [0])     # frames before each cursor, sorted
    cursors: list[PcapngCursor] = field(default_factory=lambda: [PcapngCursor()])

    def before(self, frame: int) -> PcapngCursor:
        """The last known cursor with fewer than `frame` frames behind it."""
        i = bisect.bisect_left(self.frames, frame) - 1
        return self.cursors[max(i, 0)]

    def add(self, cur: PcapngCursor) -> None:
        i = bisect.bisect_left(self.frames, cur.frames)
        if i < len(self.frames) and self.frames[i] == cur.frames:
            return
        self.frames.insert(i, cur.frames)
        self.cursors.insert(i, cur)


_indexes: dict[tuple[str, int, int], _Index] = {}
_lock = threading.Lock()


def _is_plain_pcapng(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return len(head) == 4 and int.from_bytes(head, "little") == SHB


def _index(path: Path) -> _Index:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _lock:
        idx = _indexes.get(key)
        if idx is None:
            if len(_indexes) >= MAX_FILES:
                _indexes.pop(next(iter(_indexes)))
            idx = _indexes[key] = _Index()
        return idx


def batches_from(path: str | Path, first_frame: int) -> Iterator[RawBatch]:
    """Batches of `path` in file order holding every record from frame `first_frame` on (a batch
    may start before it). Raises CaptureError for an unreadable capture."""
    p = Path(path)
    if not _is_plain_pcapng(p):
        yield from read_batches([p])
        return
    idx = _index(p)
    cur = idx.before(first_frame)
    name = str(p)
    try:
        f = open(p, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise CaptureError(name, e.strerror or str(e)) from None
    with f:
        size = BLOCK_SIZE
        while True:
            f.seek(cur.offset)
            buf = f.read(size)
            if not buf:
                return
            batch, new = read_pcapng_from(buf, cur, name, 0)
            if new.offset == cur.offset:
                if len(buf) < size or size >= MAX_PCAPNG_BLOCK + BLOCK_SIZE:
                    return        # the end of the file, or a block cut short there
                size *= 2         # a block larger than what was read
                continue
            size = BLOCK_SIZE
            with _lock:
                idx.add(new)
            cur = new
            if batch is not None:
                yield batch


def forget(path: str | Path | None = None) -> None:
    """Drop the index of `path` (every index without one)."""
    with _lock:
        if path is None:
            _indexes.clear()
            return
        name = os.fspath(Path(path).resolve())
        for key in [k for k in _indexes if k[0] == name]:
            _indexes.pop(key)


__all__ = ["batches_from", "forget"]
