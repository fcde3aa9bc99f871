"""The embedded store: one SQLite file in WAL mode, a versioned schema, atomic batches.

One writer, many readers. The writer wraps each unit of work (one capture file for `analyze`,
one batch for the sensor) in a transaction, so a failure leaves the store as it was. Frames go in
through `upsert`, keyed by their deterministic ids, so ingesting the same packets twice changes
nothing.

Read, compute, write: the one way to change the store from what it holds.
- A change made in one transaction (a console's triage, a counter) reads what it needs INSIDE
  `transaction()`: that is BEGIN IMMEDIATE, so nobody else writes between the read and the write.
- Work that keeps state in memory across transactions (the pipeline: open sessions, inventory,
  baseline) holds `writer()` from loading that state to its last write (lease.py): Ingest.run
  does, and the sensor holds it for as long as it runs.
Both wait for another writer with one line through `on_wait` (never the 5 s "database is
locked" of SQLite's busy timeout), except that a writer that holds the store until it is stopped
(a sensor) makes another refuse at once.

A file that is not a plantwatch store (recognise.py) is refused before anything is written to it.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import polars as pl

from plantwatch.core.store import staged
from plantwatch.core.store.bulk import DeferredIndexes
from plantwatch.core.store.engine.pg_store import AdvisoryLease, is_dsn
from plantwatch.core.store.errors import StoreError, StoreUnreachable
from plantwatch.core.store.lease import LeaseRefused, WriterLease
from plantwatch.core.store.migrations import MIGRATIONS, TABLE_KEYS, V8_TABLES
from plantwatch.core.store.recognise import (
    ForeignFile,
    NotYetAStore,
    check_store_file,
    tighten_mode,
)

log = logging.getLogger(__name__)
DEFAULT_SITE = "default"
BUSY_MS = 5000          # SQLite's own wait for a lock, for statements other than BEGIN IMMEDIATE
BEGIN_POLL_MS = 200     # BEGIN IMMEDIATE tries this long at a time, then says it waits, then retries


def fingerprint(path: str | Path) -> str:
    """Identity of a capture's content: size plus hashes of its head and tail (cheap on big files)."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(p, "rb") as f:
        h.update(f.read(1 << 16))
        if size > 1 << 17:
            f.seek(size - (1 << 16))
            h.update(f.read())
    return h.hexdigest()


class Store:
    def __init__(self, path: str | Path, *, readonly: bool = False,
                 on_wait: Callable[[str], None] | None = None, site: str | None = None,
                 sensor: str | None = None, all_sites: bool = False) -> None:
        """`path`: an SQLite file or a PostgreSQL DSN (postgresql://...). `on_wait` is told, once
        per wait, that another writer holds the store (default: logged). `site` and `sensor`
        (default: $PLANTWATCH_SITE or 'default'; $PLANTWATCH_SENSOR or this host's name) go into
        every row written through `upsert` (migration V8), and reads are kept to that site
        (migration V9). `all_sites`: the console's lists read every site of the store instead
        (`for_site` gives the view of one)."""
        self.path = str(path)
        self.site = site or os.environ.get("PLANTWATCH_SITE") or DEFAULT_SITE
        self.all_sites = all_sites
        # the pipeline state's scope: a named sensor resumes its own; unnamed ones share '' (and the lease)
        self.sensor_name = sensor or os.environ.get("PLANTWATCH_SENSOR") or ""
        self.sensor = self.sensor_name or socket.gethostname()
        self.readonly = readonly
        self.on_wait = on_wait or (lambda msg: log.warning("%s", msg))
        self._bulk: DeferredIndexes | None = None
        # removed once this process has read its report (analyze without --store): bulk runs
        # leave the sessions' secondary indexes out (bulk.py)
        self.throwaway = False
        self.engine = "postgresql" if is_dsn(path) else "sqlite"
        if self.engine == "postgresql":
            self._open_postgres(str(path))
            return
        self.lease: WriterLease | AdvisoryLease = WriterLease(path)
        try:
            if readonly:
                if not Path(path).exists():
                    raise StoreError(f"{path}: no such store")
                self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            else:
                parent = Path(path).resolve().parent
                if not parent.is_dir():
                    raise StoreError(f"{path}: directory {parent} does not exist")
                if not os.access(parent, os.W_OK) or (Path(path).exists() and not os.access(path, os.W_OK)):
                    raise StoreError(f"{path}: not writable")
                if self._recognise():
                    # a new store is created and migrated under the writer lease, so that another
                    # process opening it meanwhile waits instead of finding a half-made file
                    with self.writer():
                        if self._recognise(creating=True):
                            Path(path).touch(mode=0o600)
                        self._open_writable()
                else:
                    self._open_writable()
            self.db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        except BaseException as e:
            # a store that could not be opened (a full disk while migrating...) keeps no file open:
            # the caller's error path holds this half-made object, not a connection to close
            if getattr(self, "db", None) is not None:
                with suppress(sqlite3.Error):
                    self.db.close()
            if isinstance(e, sqlite3.DatabaseError):
                raise _store_error(path, e) from None
            raise

    def _recognise(self, *, creating: bool = False) -> bool:
        """True: the store is still to be made. False: a plantwatch store. Otherwise StoreError,
        nothing written. An SQLite file with nothing in it counts as "to be made" until this
        process is `creating` (holds the lease): then it is somebody else's empty database."""
        try:
            return check_store_file(self.path, len(MIGRATIONS))
        except NotYetAStore as e:
            if creating:
                raise StoreError(f"{self.path}: not a plantwatch store ({e})") from None
            return True
        except ForeignFile as e:
            raise StoreError(f"{self.path}: not a plantwatch store ({e})") from None
        except OSError as e:
            raise StoreError(f"{self.path}: {e.strerror or e}") from None

    def _open_postgres(self, dsn: str) -> None:
        """A PostgreSQL store (core/store/engine/): the same schema and SQL, the lease an advisory lock."""
        from plantwatch.core.store.engine import pg_store

        self.path = pg_store.redact(dsn)
        try:
            self.db = pg_store.open_db(dsn, readonly=self.readonly)
            self.lease = pg_store.AdvisoryLease(self.db, self.path, (self.site, self.sensor_name))
            if not self.readonly:
                with pg_store.setup_lock(self.db):
                    self._migrate()
        except sqlite3.DatabaseError as e:
            raise _store_error(self.path, e) from None

    def _open_writable(self) -> None:
        path = self.path
        tighten_mode(path)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        # 64 MiB of pages (the default 2 MB keeps evicting the index pages a run updates)
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    # --- schema ---
    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        if self.version > len(MIGRATIONS):
            raise StoreError(f"{self.path}: written by a newer plantwatch (schema {self.version})")
        if self.version == len(MIGRATIONS):
            return
        with self.writer():   # two processes opening an old store: one migrates, the other waits
            current = self.version
            for v, script in enumerate(MIGRATIONS[current:], start=current + 1):
                # executescript runs the whole script, comments and all; the transaction is in the
                # script so a failing statement leaves it open for the ROLLBACK below
                try:
                    self.db.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={v};\nCOMMIT;")
                except BaseException:
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK")
                    raise

    # --- writing ---
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all."""
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        try:
            self._begin()
        except sqlite3.DatabaseError as e:
            raise _store_error(self.path, e) from None
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            self._rollback()
            raise _store_error(self.path, e) from None

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting for another connection's write transaction as long as it
        lasts: short tries, the wait said once through on_wait."""
        said = False
        if self.engine == "postgresql":   # write transactions take turns, as SQLite's do
            from plantwatch.core.store.engine import pg_store
            pg_store.begin_write(self.db)
            return
        self.db.execute(f"PRAGMA busy_timeout={BEGIN_POLL_MS}")
        try:
            while True:
                try:
                    self.db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as e:
                    if "locked" not in str(e) and "busy" not in str(e):
                        raise
                if not said:
                    self.on_wait(f"waiting for the store {self.path}: another connection is writing to it")
                    said = True
                time.sleep(BEGIN_POLL_MS / 1000)
        finally:
            self.db.execute(f"PRAGMA busy_timeout={BUSY_MS}")

    @contextmanager
    def writer(self, *, until_stopped: bool = False) -> Iterator[None]:
        """The writer lease (lease.py): hold it from reading the pipeline state to the last write
        computed from it. Reentrant. `until_stopped`: this process keeps it until it is stopped
        (a sensor), so other writers refuse at once instead of waiting."""
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        try:
            self.lease.acquire(until_stopped=until_stopped, on_wait=self.on_wait)
        except LeaseRefused as e:
            raise StoreError(f"{self.path}: {e}") from None
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):   # said as SQLite's own full disk is
                raise StoreError(f"{self.path}: cannot write (database or disk is full); "
                                 "nothing from this run was kept") from None
            raise StoreError(f"{self.path}: cannot lock {self.lease.path}: {e.strerror or e}") from None
        try:
            yield
        finally:
            self.lease.release()

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """A transaction for an offline run's many rows: secondary indexes may be built once at
        the end instead of row by row (core/store/bulk.py). Same contents, same crash guarantees."""
        with self.transaction():
            if self.engine == "postgresql":   # rows go in by COPY (engine/pg_store.py)
                yield
                return
            self._bulk = DeferredIndexes(self.db, rebuild=not self.throwaway)
            try:
                yield
                self._bulk.restore()
            finally:
                self._bulk = None

    def _rollback(self) -> None:
        # SQLite may already have rolled back on its own (a full disk, an I/O error)
        if self.db.in_transaction:
            with suppress(sqlite3.DatabaseError):
                self.db.execute("ROLLBACK")

    def upsert(self, table: str, frame: pl.DataFrame) -> None:
        """Insert rows, replacing those whose key (TABLE_KEYS) already exists."""
        if frame.height == 0:
            return
        if table in V8_TABLES and "site" not in frame.columns:
            frame = frame.with_columns(pl.lit(self.site).alias("site"), pl.lit(self.sensor).alias("sensor"))
        cols = frame.columns
        key = TABLE_KEYS[table]
        if self.engine == "postgresql":
            from plantwatch.core.store.engine import pg_store
            try:
                pg_store.upsert(self.db, table, frame)
            except sqlite3.DatabaseError as e:
                raise _store_error(self.path, e) from None
            return
        if self._bulk is not None:
            self._bulk.wrote(table, frame.height)
            frame = frame.sort(list(key))  # b-tree pages filled in order, not at random
        updates = ", ".join(f"{c}=excluded.{c}" for c in cols if c not in key)
        conflict = f"ON CONFLICT ({', '.join(key)}) DO " + (f"UPDATE SET {updates}" if updates else "NOTHING")
        try:
            if staged.worth_staging(frame):
                staged.upsert_staged(self.db, table, frame, conflict)
                return
            self.db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                                + conflict, frame.iter_rows())
        except sqlite3.DatabaseError as e:
            raise _store_error(self.path, e) from None

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.DatabaseError as e:
            raise _store_error(self.path, e) from None

    # --- reading ---
    def frame(self, sql: str, params: tuple | dict = (), schema: dict | None = None) -> pl.DataFrame:
        cur = self.execute(sql, params)
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        if schema is not None:
            return pl.DataFrame(rows, schema={n: schema[n] for n in names}, orient="row")
        return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)

    def for_site(self, site: str) -> Store:
        """This store, on the same connection, kept to one site (a console reading every site
        opens one site's device or breach). Closing it is closing this one: close this one."""
        view = copy.copy(self)
        view.site, view.all_sites = site, False
        return view

    def integrity_ok(self) -> bool:
        return self.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        self.db.close()
        while self.lease.held:
            self.lease.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _store_error(path: str | Path, e: sqlite3.DatabaseError) -> StoreError:
    """One line naming the store; a server that cannot be reached as StoreUnreachable."""
    lost = getattr(e, "connection_lost", False)
    return (StoreUnreachable if lost else StoreError)(f"{path}: {_sqlite_problem(e)}")


def _sqlite_problem(e: sqlite3.DatabaseError) -> str:
    msg = str(e)
    if "disk is full" in msg or "disk I/O" in msg:
        return f"cannot write ({msg}); nothing from this run was kept"
    if "not a database" in msg:
        return "not a plantwatch store (not an SQLite database)"
    if "readonly" in msg or "read-only" in msg:
        return "not writable"
    return msg
