"""The `captures` table's memory of what was read: a new file that continues a stored capture
(its first records are that capture's records, in order) or repeats one (all its records are
already stored) is recognised before it is read, so no record is counted twice.

The comparison is on the decompressed bytes (plantwatch.core.capture.continuation): a file
continues stored capture C when its bytes up to C's `stream_end` hash to C's `stream_digest`;
its first `records` records are then skipped. A file that ends before C's `stream_end` repeats C
when its bytes equal C's first bytes, which is checked by reading C's own file again (still
there, unchanged); when that file is gone the question stays open and the caller is told so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plantwatch.core.capture.continuation import HEAD_BYTES, StreamMark
from plantwatch.core.capture.files import read_batches, scan_prefix
from plantwatch.core.store.database import Store, fingerprint


@dataclass(frozen=True, slots=True)
class Stored:
    capture_id: int
    path: str
    fingerprint: str
    stream_end: int
    stream_digest: str
    records: int


@dataclass(frozen=True, slots=True)
class Relation:
    """How a new file relates to the stored captures. `continues`: it holds that capture's
    records first (skip `continues.records` of them); `repeats`: all its records are in that
    capture; `unsure`: it begins like that capture, whose file cannot be read to compare."""
    continues: Stored | None = None
    repeats: Stored | None = None
    unsure: Stored | None = None


_COLS = "capture_id, path, fingerprint, stream_end, stream_digest, records"


def _candidates(store: Store, head: str | None) -> list[Stored]:
    rows = store.execute(f"SELECT {_COLS} FROM captures WHERE stream_end IS NOT NULL AND stream_end < ? AND site = ?",
                         (HEAD_BYTES, store.site)).fetchall()
    if head is not None:
        rows += store.execute(f"SELECT {_COLS} FROM captures WHERE head_digest = ? AND site = ?",
                              (head, store.site)).fetchall()
    return [Stored(*r) for r in rows]


def relation(store: Store, path: Path, name: str | None = None) -> Relation:
    """How the capture file at `path` (called `name` in messages) relates to the captures
    stored, found before it is read. A file unfit to read raises CaptureError as reading would."""
    head, _, _ = scan_prefix(path, [])
    cands = _candidates(store, head)
    if not cands:
        return Relation()
    _, digests, size = scan_prefix(path, [c.stream_end for c in cands])
    same = [c for c in cands if digests.get(c.stream_end) == c.stream_digest]
    continues = max(same, key=lambda c: (c.stream_end, c.capture_id)) if same else None
    # it ended before some candidates' end: is it their beginning? (then it adds nothing, even
    # when it also continues a shorter one)
    longer = sorted((c for c in cands if size < c.stream_end), key=lambda c: -c.stream_end)
    unsure = None
    if longer and _has_a_record(path, name or str(path)):
        _, mine, _ = scan_prefix(path, [size])
        for c in longer:
            theirs = _prefix_of_stored(c, size)
            if theirs is None:
                if head is not None and c.stream_end >= HEAD_BYTES:   # they share their first 64 KiB
                    unsure = unsure or c
            elif theirs == mine.get(size):
                return Relation(repeats=c)
    return Relation(continues=continues, unsure=unsure)


def _has_a_record(path: Path, name: str) -> bool:
    """A file repeats a stored capture only with something to repeat: an empty or cut header
    is reported by the reader as it would be for any capture."""
    batches = read_batches([path], chunk_packets=1, names=[name], on_warning=lambda _m: None)  # said when read
    try:
        return next(batches, None) is not None
    finally:
        batches.close()


def _prefix_of_stored(c: Stored, size: int) -> str | None:
    """Digest of the first `size` bytes of stored capture `c`'s file; None when that file is
    gone or no longer the one that was read."""
    p = Path(c.path)
    try:
        if not p.is_file() or fingerprint(p) != c.fingerprint:
            return None
        _, got, _ = scan_prefix(p, [size])
    except OSError:
        return None
    return got.get(size)


def repeated_within(paths: list[Path]) -> dict[int, int]:
    """Among the files of one run: {i: j} when file i's bytes are the beginning of file j's (its
    records are j's first records, read with j). Only files sharing their first HEAD_BYTES
    bytes are compared."""
    by_head: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        head, _, _ = scan_prefix(p, [])
        if head is not None:
            by_head.setdefault(head, []).append(i)
    out: dict[int, int] = {}
    for group in by_head.values():
        if len(group) < 2:
            continue
        size = {i: scan_prefix(paths[i], [1 << 62])[2] for i in group}
        for i in group:
            for j in sorted(group, key=lambda k: -size[k]):
                if j == i or size[j] < size[i] or (size[j] == size[i] and j < i) or j in out:
                    continue
                if scan_prefix(paths[i], [size[i]])[1] == scan_prefix(paths[j], [size[i]])[1]:
                    out[i] = j
                    break
    return out


def record_mark(store: Store, capture_id: int, mark: StreamMark) -> None:
    """What recognises the capture later (inside the run's transaction)."""
    store.execute("UPDATE captures SET head_digest=?, stream_end=?, stream_digest=?, records=? WHERE capture_id=?",
                  (mark.head_digest, mark.stream_end, mark.stream_digest, mark.records, capture_id))
