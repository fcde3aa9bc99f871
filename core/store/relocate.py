"""Pointing a store at the folder its captures were moved to: each capture is looked for by its
file name in the new folder and accepted only when its content fingerprint is the stored one
(ring files of a sensor, whose fingerprint names the file, by their size), so a different file
that happens to share a name is never taken for the evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from plantwatch.core.store.database import Store, fingerprint
from plantwatch.core.store.errors import StoreError


@dataclass(slots=True)
class Relocation:
    moved: list[tuple[str, str]] = field(default_factory=list)      # (old path, new path)
    in_place: list[str] = field(default_factory=list)               # already where the store says
    differ: list[str] = field(default_factory=list)                 # a file of that name, other content
    missing: list[str] = field(default_factory=list)                # not in the folder


def _same(path: Path, fp: str, size: int) -> bool:
    try:
        if fp.startswith("ring:"):
            return path.stat().st_size >= size
        return fingerprint(path) == fp
    except OSError:
        return False


def relocate(store: Store, folder: str | Path, dry_run: bool = False) -> Relocation:
    """Update `captures.path` of every capture found (same name, same fingerprint) in `folder`."""
    root = Path(folder)
    if not root.is_dir():
        raise StoreError(f"{folder}: not a directory")
    root = root.resolve()
    out = Relocation()
    rows = store.execute("SELECT capture_id, path, fingerprint, size FROM captures ORDER BY capture_id").fetchall()
    updates = []
    for cid, path, fp, size in rows:
        old = Path(path)
        if old.is_file() and old.is_absolute() and _same(old, fp, size or 0):
            out.in_place.append(path)
            continue
        cand = root / old.name
        if not cand.is_file():
            out.missing.append(path)
        elif not _same(cand, fp, size or 0):
            out.differ.append(path)
        else:
            out.moved.append((path, str(cand)))
            updates.append((str(cand), cid))
    if updates and not dry_run:
        with store.transaction():
            store.db.executemany("UPDATE captures SET path = ? WHERE capture_id = ?", updates)
    return out


__all__ = ["Relocation", "relocate"]
