"""Captures that come from a pipe, a FIFO or a terminal (`cat x.pcap | plantwatch analyze
/dev/stdin`) are copied to a temporary file before anything reads them.

A pipe can be read once, from the start, while a run needs to look at a capture before reading
it (is it already in the store? does it continue a stored capture?) and the reader counts on a
size for its progress. The copy is made in the temporary directory ($TMPDIR), private to the
user, and removed at the end of the run; messages keep naming the capture as it was given.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from plantwatch.core.capture.batch import CaptureError


def is_stream(path: Path) -> bool:
    """True for what can be read only once (a pipe, a FIFO, a character device)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextmanager
def spooled(paths: Sequence[Path]) -> Iterator[list[Path | None]]:
    """For each of `paths`, the temporary copy to read instead (None: read the file itself)."""
    made: list[Path] = []
    try:
        out: list[Path | None] = []
        for p in paths:
            if not is_stream(p):
                out.append(None)
                continue
            fd, name = tempfile.mkstemp(prefix="plantwatch-", suffix=".capture")
            made.append(Path(name))
            try:
                with open(p, "rb") as src, os.fdopen(fd, "wb") as dst:
                    shutil.copyfileobj(src, dst, 4 << 20)
            except OSError as e:
                raise CaptureError(str(p), f"cannot copy it to {name}: {e.strerror or e}") from None
            out.append(Path(name))
        yield out
    finally:
        for m in made:
            m.unlink(missing_ok=True)
