"""What recognises a capture that continues, or repeats, one read before.

A file cut short (`head -c`, a copy taken while the capture still ran, a truncated download)
and the whole file it was cut from share their bytes up to the cut. So a capture is remembered by
a `StreamMark`: how far its whole blocks go in its decompressed bytes (a record cut mid-way is
not part of it), how many records lie before that point, and the SHA-256 of those bytes; plus
the SHA-256 of its first HEAD_BYTES bytes to find candidates by. A later file whose bytes up to
a stored capture's `stream_end` hash to that capture's digest holds every one of its records,
equal and in order: only the records after them are new. A file that merely begins the same
way (a shared header, a shared first record) and then differs does not match.

The reader (files.py) computes a file's mark while it reads it; `digest_prefixes` (through
files.scan_prefix) hashes the head of a file before it is read, to decide which records are new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

HEAD_BYTES = 1 << 16


@dataclass(frozen=True, slots=True)
class StreamMark:
    head_digest: str | None   # of the first HEAD_BYTES bytes; None when stream_end is shorter
    stream_end: int           # decompressed offset just after the last whole block
    stream_digest: str        # of bytes [0, stream_end)
    records: int              # records (frames) in bytes [0, stream_end)


class StreamHasher:
    """Digests of a byte stream fed in order: the head, and everything so far."""

    def __init__(self) -> None:
        self.all = hashlib.sha256()
        self.head = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        if not data:
            return
        if self.size < HEAD_BYTES:
            self.head.update(data[:HEAD_BYTES - self.size])
        self.all.update(data)
        self.size += len(data)

    def mark(self, records: int) -> StreamMark:
        head = self.head.hexdigest() if self.size >= HEAD_BYTES else None
        return StreamMark(head, self.size, self.all.hexdigest(), records)


def digest_prefixes(chunks: Iterable[bytes], offsets: Iterable[int]) -> tuple[str | None, dict[int, str], int]:
    """Of a decompressed byte stream given in chunks: the head digest, the digest of bytes
    [0, o) for each offset o the stream reaches, and how many bytes were read (all of them when
    the stream is shorter than the largest offset and HEAD_BYTES)."""
    want = sorted(set(offsets))
    stop = max([HEAD_BYTES, *want])
    h = StreamHasher()
    got: dict[int, str] = {}
    i = 0
    while i < len(want) and want[i] <= 0:
        got[want[i]] = h.all.hexdigest()
        i += 1
    for chunk in chunks:
        view = memoryview(chunk)
        while view and h.size < stop:
            target = want[i] if i < len(want) else stop
            n = min(len(view), target - h.size)
            h.update(view[:n])
            view = view[n:]
            while i < len(want) and h.size == want[i]:
                got[want[i]] = h.all.copy().hexdigest()
                i += 1
        if h.size >= stop:
            break
    head = h.head.hexdigest() if h.size >= HEAD_BYTES else None
    return head, got, h.size
