"""A PostgreSQL database behind the sqlite3.Connection subset the store's code uses.

`PgConnection` has execute / executemany / executescript / in_transaction / close and returns
cursors with fetchone / fetchall / description / lastrowid / rowcount; every statement goes
through dialect.query. Errors are raised as sqlite3's exception classes (PgError below is an
sqlite3.DatabaseError, a lost server an sqlite3.OperationalError), so the callers' handling is
the same for both engines. The connection runs in autocommit mode: BEGIN / COMMIT come from
Store.transaction as they do for SQLite.

Values come back as SQLite gives them: SUM/AVG of integers (PostgreSQL numeric) as int or
float, bytea as bytes.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.adapt import Dumper, Loader

from plantwatch.core.store.engine import dialect

_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\s*\(([^)]*)\)\s*VALUES", re.I)


class PgError(sqlite3.DatabaseError):
    """A PostgreSQL error, as the sqlite3 class the store's callers already handle."""


class PgConnectionLost(sqlite3.OperationalError):
    """The server cannot be reached (down, restarted, network): Store raises StoreUnreachable."""

    connection_lost = True


def _wrap(e: psycopg.Error) -> sqlite3.DatabaseError:
    msg = (str(e).splitlines() or [type(e).__name__])[0]
    if isinstance(e, psycopg.OperationalError) and not isinstance(e, psycopg.errors.QueryCanceled):
        return PgConnectionLost(f"PostgreSQL: {msg}")
    return PgError(f"PostgreSQL: {msg}")


class _NumericLoader(Loader):
    """numeric -> int when whole, else float (SQLite's SUM of integers is an integer)."""

    def load(self, data: Any) -> int | float:
        s = bytes(data).decode()
        if "." in s or "e" in s.lower() or s.lower() in ("nan", "infinity", "-infinity"):
            f = float(s)
            return int(f) if f.is_integer() and "." not in s else f
        return int(s)


class _BoolAsInt(Dumper):
    """Python bools go in as 0/1, as sqlite3 stores them (the schema's flags are integers)."""

    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class PgCursor:
    def __init__(self, cur: psycopg.Cursor, lastrowid: int | None = None) -> None:
        self._cur = cur
        self.lastrowid = lastrowid
        self._first: tuple | None = None

    @property
    def description(self) -> Sequence | None:
        return self._cur.description

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def fetchone(self) -> tuple | None:
        return self._cur.fetchone() if self._cur.description else None

    def fetchall(self) -> list[tuple]:
        return self._cur.fetchall() if self._cur.description else []

    def __iter__(self):
        return iter(self.fetchall())


def identity_columns() -> dict[str, str]:
    """table -> its INTEGER PRIMARY KEY column (assigned by the database when an insert omits it)."""
    from plantwatch.core.store.migrations import MIGRATIONS

    out: dict[str, str] = {}
    for script in MIGRATIONS:
        for stmt in dialect.split_script(script):
            m = re.match(r"\s*CREATE\s+TABLE\s+(\w+)\s*\((.*)\)\s*$", stmt, re.I | re.S)
            if m is None:
                continue
            col = re.search(r"(?:^|,)\s*(\w+)\s+INTEGER\s+PRIMARY\s+KEY\b", m.group(2), re.I)
            if col:
                out[m.group(1)] = col.group(1)
    return out


_IDENTITY = identity_columns()


class PgConnection:
    def __init__(self, dsn: str, *, readonly: bool = False, application_name: str = "plantwatch") -> None:
        try:
            self.conn = psycopg.connect(dsn, autocommit=True, application_name=application_name[:63],
                                        connect_timeout=10)
        except psycopg.Error as e:
            raise _wrap(e) from None
        self.conn.adapters.register_loader("numeric", _NumericLoader)
        self.conn.adapters.register_dumper(bool, _BoolAsInt)
        self.readonly = readonly
        if readonly:
            self.conn.execute("SET default_transaction_read_only = on")

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    @property
    def broken(self) -> bool:
        return self.conn.closed or self.conn.broken

    def execute(self, sql: str, params: Sequence | dict = ()) -> PgCursor:
        has = bool(params)
        text = dialect.query(sql, params=has)
        if not text:
            return PgCursor(self.conn.cursor())
        m = _INSERT.match(text)
        ident = _IDENTITY.get(m.group(1)) if m else None
        # an insert that leaves the id to the database says which it got, as sqlite3's lastrowid
        returning = m is not None and ident is not None and \
            ident not in {c.strip() for c in m.group(2).split(",")}
        if returning:
            text += f" RETURNING {ident}"
        if has and not isinstance(params, dict) and "%(p" in text:
            params = {f"p{i}": v for i, v in enumerate(params, start=1)}
        try:
            cur = self.conn.execute(text, params if has else None)
        except psycopg.Error as e:
            raise _wrap(e) from None
        if returning:
            row = cur.fetchone()
            return PgCursor(cur, int(row[0]) if row else None)
        return PgCursor(cur)

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> PgCursor:
        text = dialect.query(sql, params=True)
        cur = self.conn.cursor()
        try:
            cur.executemany(text, list(rows))
        except psycopg.Error as e:
            raise _wrap(e) from None
        return PgCursor(cur)

    def executescript(self, script: str) -> None:
        for stmt in dialect.script(script):
            self.execute(stmt)

    def copy_rows(self, table: str, cols: Sequence[str], rows: Iterable[Sequence]) -> None:
        """COPY rows into `table` (inside the caller's transaction)."""
        cur = self.conn.cursor()
        names = ", ".join(f'"{c}"' for c in cols)
        try:
            with cur.copy(f"COPY {table} ({names}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
        except psycopg.Error as e:
            raise _wrap(e) from None

    def copy_csv(self, table: str, cols: Sequence[str], data: bytes) -> None:
        """COPY CSV text (NULL written as an unquoted \\N) into `table`."""
        names = ", ".join(f'"{c}"' for c in cols)
        try:
            with self.conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN (FORMAT csv, NULL '\\N')") as cp:
                cp.write(data)
        except psycopg.Error as e:
            raise _wrap(e) from None

    def close(self) -> None:
        self.conn.close()
