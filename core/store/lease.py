"""The writer lease: one process at a time reads the pipeline state, computes, and writes.

SQLite's write lock covers one transaction. The pipeline holds state in memory across several
(open sessions, inventory, baseline, ring positions: loaded at the start, saved at the end; the
sensor commits once per batch), so a second writer that loaded the same state meanwhile would
overwrite the first one's work with a stale copy. The lease is an exclusive flock(2) on a file
next to the store (`<store>-lock`, like SQLite's own `-wal` and `-shm`), held from loading the
state to the last write made from it. The kernel drops it when its holder dies, so a killed run
never leaves a stale lock. The holder writes its pid and command line into the file so that a
process waiting for it can say for whom.

A holder that keeps the lease until it is stopped (the sensor, a live console) says so; another
writer then refuses at once instead of waiting for days. Anyone else waits, saying so once.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

POLL_S = 0.1


class LeaseRefused(Exception):
    """The store is held by a writer that keeps it until stopped. str() is one line."""


def lock_path(store_path: str | Path) -> Path:
    return Path(f"{store_path}-lock")


def _printable(s: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in s)[:200]


class ReentrantLease:
    """The lease's counting, shared by the file lease below and PostgreSQL's advisory lease: a
    holder may take it again (a run inside a transaction inside a run), and only the outermost
    release gives it up. Subclasses take it in `_take` and give it up in `_give_up`."""

    depth = 0

    @property
    def held(self) -> bool:
        return self.depth > 0

    def acquire(self, *, until_stopped: bool, on_wait: Callable[[str], None]) -> None:
        if not self.depth:
            self._take(until_stopped=until_stopped, on_wait=on_wait)
        self.depth += 1

    def release(self) -> None:
        if not self.depth:
            return
        self.depth -= 1
        if self.depth == 0:
            self._give_up()

    def _take(self, *, until_stopped: bool, on_wait: Callable[[str], None]) -> None:
        raise NotImplementedError

    def _give_up(self) -> None:
        raise NotImplementedError


class WriterLease(ReentrantLease):
    """Reentrant within one Store object: nested acquire/release pairs count."""

    def __init__(self, store_path: str | Path) -> None:
        self.store = str(store_path)
        self.path = lock_path(store_path)
        self.fd = -1

    def _take(self, *, until_stopped: bool, on_wait: Callable[[str], None]) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            said = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                holder = self._holder(fd)
                if holder.get("until_stopped"):
                    raise LeaseRefused(f"{self._describe(holder)} writes to this store until it is "
                                       "stopped; stop it or use another store")
                if not said:
                    on_wait(f"waiting for the store {self.store}: {self._describe(holder)} is writing to it")
                    said = True
                time.sleep(POLL_S)
            me = {"pid": os.getpid(), "command": _printable(" ".join(sys.argv)),
                  "until_stopped": until_stopped}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def _give_up(self) -> None:
        os.close(self.fd)   # closing the descriptor releases the flock
        self.fd = -1

    @staticmethod
    def _holder(fd: int) -> dict:
        try:
            data = json.loads(os.pread(fd, 4096, 0) or b"{}")
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}    # the holder is writing it right now

    @staticmethod
    def _describe(holder: dict) -> str:
        pid, cmd = holder.get("pid"), holder.get("command")
        if not pid:
            return "another plantwatch process"
        return f"another plantwatch process (pid {int(pid)}" + (f": {_printable(str(cmd))})" if cmd else ")")
