"""Many rows into SQLite without binding their NULLs one by one.

Python's sqlite3 binds an int or a str straight away, but None goes through its adapter lookup
(a tuple key, a dict probe, two attribute probes): about four times a number's cost. A third of
the cells of a run's sessions are NULL (event flags, TLS and RDP fields of non-TLS sessions), and
binding them was half the time of writing the sessions (office capture, 91,000 sessions: 0.85 CPU s
bound row by row, 0.53 staged).

So a large frame is split by which columns are NULL in a row; each part is bound without those
columns into a temporary staging table (they stay NULL there), each row with its position in the
frame (a column holding one value throughout a part goes into the statement as a literal, not
bound per row); one INSERT ... SELECT ... ORDER BY position then writes the rows into the table in the
frame's order with the same upsert as row by row. Same rows, same order (rowids, pages), same
conflict handling.
"""

from __future__ import annotations

import sqlite3
from contextlib import suppress

import polars as pl

MIN_ROWS = 2_000    # below this the plain bind is as fast
_MAX_NULLABLE = 63  # the null pattern of a row is kept in one unsigned 64-bit integer
_ORD = "plantwatch_ord"
_STAGE = "temp.plantwatch_stage"
_MIN_CONSTANT_ROWS = 64   # a smaller part is not worth a statement of its own


def worth_staging(frame: pl.DataFrame) -> bool:
    if frame.height < MIN_ROWS:
        return False
    nulls = sum(1 for n in frame.null_count().row(0) if n)
    return 0 < nulls <= _MAX_NULLABLE


def upsert_staged(db: sqlite3.Connection, table: str, frame: pl.DataFrame, conflict: str) -> None:
    """INSERT the rows of `frame` into `table` followed by `conflict` (the ON CONFLICT clause)."""
    cols = frame.columns
    counts = frame.null_count().row(0)
    nullable = [c for c, n in zip(cols, counts, strict=True) if n]
    pattern = pl.sum_horizontal([pl.col(c).is_null().cast(pl.UInt64) * (1 << i)
                                 for i, c in enumerate(nullable)]).alias("__nulls")
    parts = frame.with_row_index(_ORD).with_columns(pattern).partition_by("__nulls", as_dict=True)
    db.execute(f"DROP TABLE IF EXISTS {_STAGE}")
    db.execute(f"CREATE TABLE {_STAGE} ({_ORD} INTEGER PRIMARY KEY, {', '.join(cols)})")
    try:
        for (mask,), part in sorted(parts.items()):
            keep = [c for c in cols if c not in nullable or not (int(mask) >> nullable.index(c)) & 1]
            same = _constants(part, keep)
            bound = [_ORD] + [c for c in keep if c not in same]
            values = ", ".join(["?"] * len(bound) + list(same.values()))
            db.executemany(f"INSERT INTO {_STAGE} ({', '.join(bound + list(same))}) VALUES ({values})",
                           part.select(bound).iter_rows())
        names = ", ".join(cols)
        # WHERE true: without it SQLite would read ON CONFLICT as part of the SELECT's join
        db.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {_STAGE} WHERE true "
                   f"ORDER BY {_ORD} {conflict}")
    finally:
        with suppress(sqlite3.DatabaseError):   # a failed write's own error is the one to report
            db.execute(f"DROP TABLE IF EXISTS {_STAGE}")


def _constants(part: pl.DataFrame, cols: list[str]) -> dict[str, str]:
    """The columns of `part` holding one value in every row (none NULL), as SQL literals: written
    once into the statement instead of bound per row. Integers, booleans and text without NUL
    only: their literals are exact (a float's decimal text might not be; int64's minimum would
    be read as minus a REAL)."""
    if part.height < _MIN_CONSTANT_ROWS:
        return {}
    exact = [c for c in cols if part.schema[c].is_integer() or part.schema[c] in (pl.Boolean, pl.String)]
    if not exact:
        return {}
    first = part.row(0, named=True)
    flags = part.select([(pl.col(c) == pl.col(c).first()).all().alias(c) for c in exact]).row(0, named=True)
    out: dict[str, str] = {}
    for c in exact:
        v = first[c]
        if not flags[c] or v is None:
            continue
        if isinstance(v, bool):
            out[c] = "1" if v else "0"
        elif isinstance(v, int):
            if v > -(1 << 63):
                out[c] = str(v)
        elif "\x00" not in v:
            out[c] = "'" + v.replace("'", "''") + "'"
    return out
