"""A byte-based progress bar on stderr for long analyses."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class ByteProgress:
    """Context manager; the object it yields is called with (bytes done, bytes total)."""

    def __enter__(self):
        self._progress = Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._progress.__enter__()
        self._task = self._progress.add_task("analysing", total=None)
        return self._update

    def _update(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)
