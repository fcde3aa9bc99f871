"""Where packets come from: pcap and pcapng files (also gzip-compressed) and directories of them.

read_batches() streams RawBatch objects in packet-time order. Files are read in blocks from a
file object with read() and readinto() only (no seek, no mmap), so the same parsers work on a
pipe. The record headers of a block are walked with one struct.unpack_from per record (pcap; in
pcapng, runs of Enhanced Packet Blocks are found with numpy); every other header field is
gathered for the whole block at once with numpy. The formats are parsed in pcap.py and
pcapng.py (whose docstring says how Wireshark's numbering is kept).

Choices worth knowing:
- Several files are merged on a key that is each file's running maximum timestamp, ties broken by
  file order: a stable k-way merge in which a file's records keep their order even when their
  timestamps go backwards.
- RawBatch.data may hold bytes between records (record headers): only data[offset:offset+caplen]
  is a record. It can be a read-only view of a read block.
- A record cut short by the end of the file (or of a truncated gzip stream) is not an error: the
  packets before it are kept and a warning is reported. So are timestamps out of int64 range
  (clamped, see records.py).
"""

from __future__ import annotations

import logging
import os
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from plantwatch.core.capture.batch import CaptureError, RawBatch
from plantwatch.core.capture.continuation import StreamHasher, StreamMark, digest_prefixes
from plantwatch.core.capture.pcap import PCAP_MAGICS, PcapParser
from plantwatch.core.capture.pcapng import (  # noqa: F401 - the resumable reader, re-exported
    SHB,
    PcapngCursor,
    PcapngParser,
    pcapng_block_at,
    read_pcapng_from,
)
from plantwatch.core.capture.records import Parser, Piece, clamp_warning, concat_pieces, to_batch

log = logging.getLogger(__name__)

BLOCK_SIZE = 4 << 20                 # bytes read (or decompressed) at a time
CHUNK_BYTES = 64 << 20               # captured bytes per batch, at most (one record excepted)
_GZIP = b"\x1f\x8b"


def _looks_like_capture(head: bytes) -> bool:
    if len(head) < 4:
        return False
    m = int.from_bytes(head[:4], "little")
    return m in PCAP_MAGICS or int.from_bytes(head[:4], "big") in PCAP_MAGICS or m == SHB


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


def check_captures(paths: Sequence[str | Path]) -> list[Path]:
    """`iter_files(paths)`, each file also checked to start like a capture (gzip looked into):
    what a command runs before it starts, so a wrong file fails at once with analyze's words."""
    files = iter_files(paths)
    for p in files:
        if p.is_file() and p.stat().st_size == 0:
            raise CaptureError(str(p), "empty file")
        if not _probe(p):
            raise CaptureError(str(p), "not a pcap or pcapng file")
    return files


def total_input_bytes(paths: Sequence[str | Path]) -> int:
    """Sum of the on-disk sizes of the capture files (what on_progress counts up to)."""
    return sum(os.path.getsize(p) for p in iter_files(paths))


# ----------------------------------------------------------------------------- byte streams

class _Stream:
    """Decompressed bytes of one file, chunk by chunk, from read() and readinto() calls only."""

    def __init__(self, f: BinaryIO, progress: Callable[[int], None]) -> None:
        self.f = f
        self.progress = progress
        self.truncated_gzip = False
        self.first = f.read(BLOCK_SIZE)
        progress(len(self.first))
        self.gzip = self.first.startswith(_GZIP)

    def _raw(self) -> Iterator[bytes]:
        if self.first:
            first, self.first = self.first, b""
            yield first
        while True:
            b = self.f.read(BLOCK_SIZE)
            if not b:
                return
            self.progress(len(b))
            yield b

    def after(self, tail: memoryview, chunks: Iterator[bytes]) -> bytes | memoryview | None:
        """`tail` followed by the next chunk of `chunks` (this stream's), in one buffer; None at
        the end. A file that is not gzip is read straight into that buffer (readinto), so its
        bytes are not copied once more behind the tail."""
        if self.gzip or self.first:
            more = next(chunks, b"")
            return (bytes(tail) + more if tail else more) if more else None
        out = np.empty(len(tail) + BLOCK_SIZE, np.uint8)
        out[:len(tail)] = np.frombuffer(tail, np.uint8)
        n = self.f.readinto(memoryview(out)[len(tail):])
        if not n:
            return None
        self.progress(n)
        return memoryview(out)[:len(tail) + n]

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


def scan_prefix(path: Path, offsets: Sequence[int]) -> tuple[str | None, dict[int, str], int]:
    """continuation.digest_prefixes over the decompressed bytes of the file at `path`."""
    with _open(path) as f:
        return digest_prefixes(_Stream(f, lambda n: None).chunks(), offsets)


def _after(pieces: list[Piece], skip: int) -> Iterator[Piece]:
    """The records of `pieces` whose frame number is above `skip` (frames increase in a file)."""
    for p in pieces:
        if not len(p) or int(p.frame[-1]) <= skip:
            continue
        if int(p.frame[0]) <= skip:
            p = p.take(slice(int(np.searchsorted(p.frame, skip, side="right")), None))
        yield p


def _file_pieces(path: Path, file_id: int, warn: Callable[[str], None],
                 progress: Callable[[int], None], *, name: str | None = None, skip: int = 0,
                 on_mark: Callable[[StreamMark], None] | None = None) -> Iterator[Piece]:
    """Every record of one capture file, as pieces of at most one block each; `skip`: the first
    that many records are read (and hashed) but not yielded. `on_mark` gets the file's
    StreamMark once it is read to its end. `name` names the file in messages."""
    name = name or str(path)
    hasher = StreamHasher()
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
        if int.from_bytes(buf[:4], "little") == SHB:
            parser: Parser = PcapngParser(name, file_id)
        else:
            parser = PcapParser(name, file_id)
        pos = parser.header(buf)
        base = 0  # file (decompressed) offset of buf[0]
        while True:
            pieces, pos = parser.walk(buf, pos, base)
            yield from _after(pieces, skip)
            nxt = stream.after(memoryview(buf)[pos:], chunks)
            if nxt is None:
                break
            parser.check_next(buf, pos)
            hasher.update(memoryview(buf)[:pos])   # whole blocks only: a cut record is not hashed
            base += pos
            buf, pos = nxt, 0
        hasher.update(memoryview(buf)[:pos])
        if parser.clamped:
            warn(clamp_warning(name, parser.clamped))
        if pos < len(buf):
            parser.check_next(buf, pos)
            warn(f"{name}: truncated record at byte {base + pos}; "
                 f"kept the {parser.packets} packets before it")
        elif stream.truncated_gzip:
            warn(f"{name}: truncated gzip stream at byte {base + pos}; "
                 f"kept the {parser.packets} packets before it")
        if on_mark is not None:
            on_mark(hasher.mark(parser.packets))


# ----------------------------------------------------------------------------- merge and batching

def _merged(sources: list[Iterator[Piece]]) -> Iterator[Piece]:
    """Stable k-way merge on (key, file index, position). A record is released once no file
    that still has records to read could produce one that sorts before it."""
    k = len(sources)
    if k == 1:
        yield from sources[0]
        return
    bufs: list[deque[Piece]] = [deque() for _ in range(k)]
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
        taken: list[Piece] = []
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
            run = concat_pieces(taken)
            if len({int(p.file_id[0]) for p in taken}) > 1:
                order = np.argsort(run.key, kind="stable")
                run = Piece(run.data, run.off[order], run.caplen[order], run.wirelen[order],
                             run.ts[order], run.linktype[order], run.frame[order],
                             run.file_id[order], run.key[order])
            yield run
        if not active and not any(bufs):
            return


def read_batches(paths: Sequence[str | Path], chunk_packets: int = 65536,
                 on_warning: Callable[[str], None] | None = None,
                 on_progress: Callable[[int], None] | None = None,
                 chunk_bytes: int = CHUNK_BYTES, *, names: Sequence[str] | None = None,
                 skip: Sequence[int] | None = None,
                 on_mark: Callable[[int, StreamMark], None] | None = None) -> Iterator[RawBatch]:
    """Every record of the captures in `paths`, merged in packet-time order, as RawBatch objects
    of at most `chunk_packets` records and, past one record, about `chunk_bytes` captured bytes
    (large packets make smaller batches, so what a batch costs downstream stays bounded).
    `names` name the files in messages and batches (default: their paths); `skip[i]`: records
    of file i already read before (continuation.py), read but not yielded; `on_mark(i, mark)`:
    file i's StreamMark, once it is read to its end. Raises CaptureError for an unreadable input."""
    if chunk_packets < 1 or chunk_bytes < 1:
        raise ValueError("chunk_packets and chunk_bytes must be >= 1")
    files = iter_files(paths)
    names = tuple(names) if names is not None else tuple(str(p) for p in files)
    warn = on_warning or log.warning
    total = 0

    def progress(n: int) -> None:
        nonlocal total
        total += n
        if on_progress is not None:
            on_progress(total)

    for p in files:  # fail early on files that cannot be opened at all
        _open(p).close()
    sources = [_file_pieces(p, i, warn, progress, name=names[i], skip=skip[i] if skip else 0,
                            on_mark=(lambda m, i=i: on_mark(i, m)) if on_mark else None)
               for i, p in enumerate(files)]
    pending: list[Piece] = []
    count = nbytes = 0
    for run in _merged(sources):
        pending.append(run)
        count += len(run)
        nbytes += int(run.caplen.sum())
        while count >= chunk_packets or nbytes >= chunk_bytes:
            whole = concat_pieces(pending) if len(pending) > 1 else pending[0]
            cut = min(count, chunk_packets)
            if nbytes >= chunk_bytes:
                filled = np.cumsum(whole.caplen[:cut], dtype=np.int64)
                cut = max(1, min(cut, int(np.searchsorted(filled, chunk_bytes, side="right"))))
            yield to_batch(whole.take(slice(0, cut)), names)
            rest = whole.take(slice(cut, None))
            pending = [rest] if len(rest) else []
            count = len(rest)
            nbytes = int(rest.caplen.sum())
    if count:
        yield to_batch(concat_pieces(pending), names)
