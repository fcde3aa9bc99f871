"""The embedded store: one SQLite file in WAL mode, a versioned schema, atomic batches.

One writer, many readers. The writer wraps each unit of work (one capture file for `analyze`,
one batch for the sensor) in a transaction, so a failure leaves the store as it was. Frames go in
through `upsert`, keyed by their deterministic ids, so ingesting the same packets twice changes
nothing.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import polars as pl

from plantwatch.core.store.bulk import DeferredIndexes
from plantwatch.core.store.errors import StoreError  # noqa: F401 (re-exported)
from plantwatch.core.store.migrations import MIGRATIONS, TABLE_KEYS


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
    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = str(path)
        self.readonly = readonly
        self._bulk: DeferredIndexes | None = None
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
                new = not Path(path).exists()
                self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                if new:
                    os.chmod(path, 0o600)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                # 64 MiB of pages (the default 2 MB keeps evicting the index pages a run updates)
                self.db.execute("PRAGMA cache_size=-65536")
                self.db.execute("PRAGMA foreign_keys=ON")
                self._migrate()
            self.db.execute("PRAGMA busy_timeout=5000")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{path}: {_sqlite_problem(e)}") from None

    # --- schema ---
    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.version
        if current > len(MIGRATIONS):
            raise StoreError(f"{self.path}: written by a newer plantwatch (schema {current})")
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
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: {_sqlite_problem(e)}") from None
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            self._rollback()
            raise StoreError(f"{self.path}: {_sqlite_problem(e)}") from None

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """A transaction for an offline run's many rows: secondary indexes may be built once at
        the end instead of row by row (core/store/bulk.py). Same contents, same crash guarantees."""
        with self.transaction():
            self._bulk = DeferredIndexes(self.db)
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
        cols = frame.columns
        key = TABLE_KEYS[table]
        if self._bulk is not None:
            self._bulk.wrote(table, frame.height)
            frame = frame.sort(list(key))  # b-tree pages filled in order, not at random
        updates = ", ".join(f"{c}=excluded.{c}" for c in cols if c not in key)
        sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
               f"ON CONFLICT ({', '.join(key)}) DO " + (f"UPDATE SET {updates}" if updates else "NOTHING"))
        try:
            self.db.executemany(sql, frame.iter_rows())
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: {_sqlite_problem(e)}") from None

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: {_sqlite_problem(e)}") from None

    # --- reading ---
    def frame(self, sql: str, params: tuple | dict = (), schema: dict | None = None) -> pl.DataFrame:
        cur = self.execute(sql, params)
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        if schema is not None:
            return pl.DataFrame(rows, schema={n: schema[n] for n in names}, orient="row")
        return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)

    def integrity_ok(self) -> bool:
        return self.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sqlite_problem(e: sqlite3.DatabaseError) -> str:
    msg = str(e)
    if "disk is full" in msg or "disk I/O" in msg:
        return f"cannot write ({msg}); nothing from this run was kept"
    if "not a database" in msg:
        return "not a plantwatch store (not an SQLite database)"
    if "readonly" in msg or "read-only" in msg:
        return "not writable"
    return msg
