"""Bulk writes for an offline run: secondary indexes built once, at the end, not row by row.

Keeping nine secondary indexes of `sessions` up to date costs most of an offline run's store time
on traffic with many short sessions (measured: 300,000 sessions, 24 CPU s with the indexes kept
row by row, 4.4 without them and rebuilt at the end, rows in key order). Inside ONE transaction,
once a run has written more rows into a table than the table held before it (and at least
MIN_ROWS), its secondary indexes are dropped; they are created again from the schema's own SQL
before the transaction commits. SQLite's DDL is transactional: a crash or an error rolls the drop
back with the rows, and readers (WAL) keep their snapshot with its indexes meanwhile. A run into a
store much larger than itself never drops anything: rebuilding a big table's indexes for a few rows
would cost more than it saves.

A throwaway store (`rebuild=False`: analyze's own temporary store, removed once its report is
printed) keeps the dropped indexes dropped: nothing will look sessions up by them, and the
report's few session aggregates scan the table (measured: office capture, 300,000 sessions,
2.3 CPU s of index builds saved; the report's failed-connections count scans instead of using
`sessions_state`, about 0.05 s).
"""

from __future__ import annotations

import sqlite3

MIN_ROWS = 10_000
TABLES = ("sessions", "session_ops")  # the tables a run writes by the hundred thousand


class DeferredIndexes:
    def __init__(self, db: sqlite3.Connection, tables: tuple[str, ...] = TABLES, *, rebuild: bool = True) -> None:
        self.db = db
        self.rebuild = rebuild
        self.written = dict.fromkeys(tables, 0)
        self.before: dict[str, int] = {}
        self.dropped: dict[str, list[str]] = {}

    def wrote(self, table: str, rows: int) -> None:
        """Count rows about to be written; drop the table's indexes when it pays (see above)."""
        if table not in self.written or table in self.dropped:
            return
        self.written[table] += rows
        if self.written[table] < MIN_ROWS:
            return
        if table not in self.before:
            self.before[table] = int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        if self.written[table] > self.before[table]:
            rows_sql = self.db.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL ORDER BY name", (table,)).fetchall()
            for name, _ in rows_sql:
                self.db.execute(f'DROP INDEX "{name}"')
            self.dropped[table] = [sql for _, sql in rows_sql]

    def restore(self) -> None:
        """Create the dropped indexes again (inside the same transaction, before it commits)."""
        if not self.rebuild:
            self.dropped.clear()
            return
        for table in sorted(self.dropped):
            for sql in self.dropped[table]:
                self.db.execute(sql)
        self.dropped.clear()
