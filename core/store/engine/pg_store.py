"""What a Store does differently on PostgreSQL: opening (and recognising) the database, the
writer lease as an advisory lock, and bulk rows through COPY.

The writer lease (core/store/lease.py) is a session-level advisory lock on the store's own
connection: the server drops it when the connection ends, so a killed writer never leaves it
held. Its holder says who it is in its application_name ("plantwatch writer pid N [until
stopped]: command"), which a waiting process reads from pg_stat_activity to say for whom it waits
or, for a holder that keeps it until stopped, to refuse at once, as with SQLite.

Upserts go through COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT into
the table: the same replace-by-key as SQLite's, a few round trips for any number of rows.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import polars as pl

from plantwatch.core.store.engine.dialect import SCHEMA_TABLE
from plantwatch.core.store.errors import StoreError
from plantwatch.core.store.lease import POLL_S, LeaseRefused, ReentrantLease
from plantwatch.core.store.migrations import TABLE_KEYS

if TYPE_CHECKING:   # psycopg is imported only when a PostgreSQL store is opened
    from plantwatch.core.store.engine.postgres import PgConnection

LEASE_KEY = 0x506C5774        # advisory lock keys: "PlWt" (the SQLite application id) in the high half,
SETUP_KEY = LEASE_KEY << 32 | 1   # the engine's own setup below
WRITE_KEY = LEASE_KEY << 32 | 2   # write transactions take turns, as SQLite's BEGIN IMMEDIATE
_HOLDER = re.compile(r"^plantwatch writer pid (\d+)( until stopped)?: ?(.*)$", re.S)

# What SQLite has and the store's SQL uses, made once per database: its schema version, the
# catalog as sqlite_master, and SUM over a comparison (SQLite's booleans are integers).
_COMPAT = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version INTEGER NOT NULL);
INSERT INTO {SCHEMA_TABLE} SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA_TABLE});
CREATE OR REPLACE VIEW sqlite_master AS
  SELECT 'table'::text AS type, tablename::text AS name, tablename::text AS tbl_name, NULL::text AS sql
    FROM pg_tables WHERE schemaname = current_schema()
  UNION ALL
  SELECT 'index'::text, indexname::text, tablename::text, indexdef::text
    FROM pg_indexes WHERE schemaname = current_schema();
CREATE OR REPLACE FUNCTION plantwatch_sum_bool(bigint, boolean) RETURNS bigint LANGUAGE sql IMMUTABLE
  AS 'SELECT CASE WHEN $2 IS NULL THEN $1 ELSE COALESCE($1, 0) + $2::int END';
CREATE OR REPLACE AGGREGATE sum(boolean) (SFUNC = plantwatch_sum_bool, STYPE = bigint)
"""


def is_dsn(location: object) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def redact(dsn: str) -> str:
    """The DSN without its password (it names the store in messages)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", dsn)


def _command() -> str:
    return "".join(c if c.isprintable() else "?" for c in " ".join(sys.argv))[:120]


def open_db(dsn: str, *, readonly: bool) -> PgConnection:
    """A connection to a plantwatch store; refuses (StoreError) a database that holds other tables."""
    from plantwatch.core.store.engine.postgres import PgConnection

    name = redact(dsn)
    db = PgConnection(dsn, readonly=readonly, application_name=f"plantwatch pid {os.getpid()}")
    has_schema = db.execute("SELECT to_regclass(?) IS NOT NULL", (SCHEMA_TABLE,)).fetchone()[0]
    if not has_schema:
        others = db.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone()[0]
        if others:
            db.close()
            raise StoreError(f"{name}: not a plantwatch store (a PostgreSQL database with {others} "
                             "other tables)")
        if readonly:
            db.close()
            raise StoreError(f"{name}: no such store (no plantwatch schema in this database)")
    if not readonly:
        db.execute("BEGIN")
        db.execute(f"SELECT pg_advisory_xact_lock({SETUP_KEY})")
        for stmt in _COMPAT.split(";\n"):
            if stmt.strip():
                db.execute(stmt)
        db.execute("COMMIT")
    return db


@contextmanager
def setup_lock(db: PgConnection) -> Iterator[None]:
    """Held while a store is migrated: one process migrates, any other waits, whatever its scope."""
    db.execute(f"SELECT pg_advisory_lock({SETUP_KEY})")
    try:
        yield
    finally:
        if not db.broken:
            db.execute(f"SELECT pg_advisory_unlock({SETUP_KEY})")


def begin_write(db: PgConnection) -> None:
    """BEGIN a write transaction once no other one is open: read-compute-write transactions (a
    triage, detection's regrouping) then see no other writer's rows appear meanwhile."""
    db.execute("BEGIN")
    db.execute(f"SELECT pg_advisory_xact_lock({WRITE_KEY})")


def lease_key(scope: tuple[str, str]) -> int:
    """The lease of one pipeline state (site, sensor name): "PlWt" high, a digest of it low."""
    digest = hashlib.sha256("\0".join(scope).encode()).digest()
    return LEASE_KEY << 32 | int.from_bytes(digest[:4], "big")


class AdvisoryLease(ReentrantLease):
    """The writer lease on PostgreSQL (interface of core/store/lease.WriterLease), one per
    pipeline state: writers of different (site, sensor name) scopes run at once."""

    def __init__(self, db: PgConnection, name: str, scope: tuple[str, str]) -> None:
        self.db = db
        self.key = lease_key(scope)
        self.path = f"{name} (advisory lock {self.key})"

    def _take(self, *, until_stopped: bool, on_wait: Callable[[str], None]) -> None:
        said = False
        me = f"plantwatch writer pid {os.getpid()}{' until stopped' if until_stopped else ''}: {_command()}"
        while not self.db.execute(f"SELECT pg_try_advisory_lock({self.key})").fetchone()[0]:
            holder = self._holder()
            if holder and holder.group(2):
                raise LeaseRefused(f"another plantwatch process (pid {holder.group(1)}) writes to this "
                                   "store until it is stopped; stop it or use another store")
            if not said:
                who = f"another plantwatch process (pid {holder.group(1)})" if holder else "another writer"
                on_wait(f"waiting for the store {self.path.split(' (')[0]}: {who} is writing to it")
                said = True
            time.sleep(POLL_S)
        self.db.execute("SELECT set_config('application_name', ?, false)", (me[:63],))

    def _holder(self) -> re.Match | None:
        row = self.db.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = ? AND l.objid::bigint = ? "
            "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (self.key >> 32, self.key & 0xFFFFFFFF)).fetchone()
        return _HOLDER.match(row[0]) if row else None

    def _give_up(self) -> None:
        if not self.db.broken:
            self.db.execute(f"SELECT pg_advisory_unlock({self.key})")
            self.db.execute("SELECT set_config('application_name', ?, false)", (f"plantwatch pid {os.getpid()}",))


def _csv(frame: pl.DataFrame) -> bytes:
    """The frame as COPY's CSV, written by polars in one go: NULL is an unquoted \\N, every string
    is quoted (so a string "\\N" stays a string), booleans are 0/1 as in SQLite."""
    frame = frame.with_columns(pl.col(pl.Boolean).cast(pl.Int8))
    return frame.write_csv(include_header=False, null_value="\\N", quote_style="non_numeric").encode()


def upsert(db: PgConnection, table: str, frame: pl.DataFrame) -> None:
    """Rows into `table` by COPY, replacing those whose key exists (the last of equal keys wins,
    as row-by-row inserts would)."""
    key = list(TABLE_KEYS[table])
    cols = frame.columns
    frame = frame.unique(subset=key, keep="last", maintain_order=True)
    tmp = f"_up_{table}"
    db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {tmp} (LIKE {table}) ON COMMIT DELETE ROWS")
    db.execute(f"TRUNCATE {tmp}")
    if any(dt == pl.Binary or dt.is_nested() or dt == pl.Object for dt in frame.dtypes):
        db.copy_rows(tmp, cols, frame.iter_rows())
    else:
        db.copy_csv(tmp, cols, _csv(frame))
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
    names = ", ".join(cols)
    db.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {tmp} ON CONFLICT ({', '.join(key)}) DO "
               + (f"UPDATE SET {updates}" if updates else "NOTHING"))
