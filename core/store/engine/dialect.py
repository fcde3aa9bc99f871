"""The store's SQL is written once, in SQLite's dialect; this turns it into PostgreSQL's.

The code base speaks the sqlite3 subset (`?` placeholders, a few SQLite constructs); the
PostgreSQL connection (postgres.py) passes every statement through `query` and every migration
script through `script`, so one schema and one set of queries serve both engines. Only code is
rewritten: string literals, quoted identifiers and comments are kept as they are.

Rewritten: `?` -> `%s`, `?N` -> `%(pN)s` (and a literal `%` -> `%%`); INDEXED BY / NOT INDEXED dropped;
json_group_array / json_array -> json_agg / json_build_array; the column `user` (reserved in PostgreSQL)
-> `"user"`; GROUP_CONCAT(x) -> STRING_AGG(x::text, ','); INSERT OR IGNORE / OR REPLACE ->
ON CONFLICT (the table's key from TABLE_KEYS); BEGIN IMMEDIATE -> BEGIN; the PRAGMAs the code
reads (user_version, data_version, table_info, integrity_check, busy_timeout...). In DDL:
INTEGER -> BIGINT (SQLite integers are 64-bit), REAL -> DOUBLE PRECISION, BLOB -> BYTEA, an
INTEGER PRIMARY KEY (SQLite's rowid alias, assigned when omitted) -> an identity column; a
table constraint PRIMARY KEY (...) -> UNIQUE (...) (SQLite allows NULLs there, as distinct values).
"""

from __future__ import annotations

import re

from plantwatch.core.store.migrations import TABLE_KEYS

SCHEMA_TABLE = "plantwatch_schema"   # holds the schema version (SQLite: PRAGMA user_version)
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|[^'\"-]+|-")


def _segments(sql: str) -> list[tuple[bool, str]]:
    """(is_code, text) pieces: literals, quoted identifiers and comments are not code."""
    out: list[tuple[bool, str]] = []
    for m in _TOKEN.finditer(sql):
        t = m.group(0)
        code = not (t.startswith("'") or t.startswith('"') or t.startswith("--"))
        if code and out and out[-1][0]:
            out[-1] = (True, out[-1][1] + t)
        else:
            out.append((code, t))
    return out


def _map_code(sql: str, fn, literal=lambda t: t) -> str:
    """`fn` over the code of `sql`, literals masked (so a clause may span them), then restored."""
    kept: list[str] = []
    masked = []
    for code, t in _segments(sql):
        if code:
            masked.append(t)
        else:
            kept.append(literal(t))
            masked.append(f"\x00{len(kept) - 1}\x00")
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], fn("".join(masked)))


def split_script(script: str) -> list[str]:
    """The statements of a script (comments dropped), split on `;` outside literals."""
    stmts, cur = [], []
    for code, t in _segments(script):
        if not code:
            if not t.startswith("--"):
                cur.append(t)
            continue
        parts = t.split(";")
        cur.append(parts[0])
        for p in parts[1:]:
            stmts.append("".join(cur))
            cur = [p]
    stmts.append("".join(cur))
    return [s.strip() for s in stmts if s.strip()]


_GROUP_CONCAT = re.compile(r"\bGROUP_CONCAT\s*\(", re.I)
_INDEXED_BY = re.compile(r"\s+(?:INDEXED\s+BY\s+\w+|NOT\s+INDEXED\b)", re.I)
_JSON_GROUP = re.compile(r"\bjson_group_array\s*\(", re.I)
_JSON_ARRAY = re.compile(r"\bjson_array\s*\(", re.I)


def _group_concat(sql: str) -> str:
    while (m := _GROUP_CONCAT.search(sql)) is not None:
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        arg = sql[m.end():i - 1].strip()
        distinct = ""
        if arg.upper().startswith("DISTINCT "):
            distinct, arg = "DISTINCT ", arg[9:]
        sql = f"{sql[:m.start()]}STRING_AGG({distinct}({arg})::text, ','){sql[i:]}"
    return sql


_ORDER_BY = re.compile(r"\bORDER\s+BY\b", re.I)
_ORDER_END = re.compile(r"\b(LIMIT|OFFSET|UNION|EXCEPT|INTERSECT|FOR)\b", re.I)


def _nulls_as_sqlite(sql: str) -> str:
    """SQLite sorts NULL below every value, PostgreSQL above: say SQLite's order explicitly."""
    out, pos = [], 0
    for m in _ORDER_BY.finditer(sql):
        if m.start() < pos:
            continue
        out.append(sql[pos:m.end()])
        i, depth, start, terms = m.end(), 0, m.end(), []
        while i < len(sql):
            ch = sql[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and ch == ",":
                terms.append(sql[start:i])
                start = i + 1
            elif depth == 0 and _ORDER_END.match(sql, i) and (i == 0 or not sql[i - 1].isalnum()):
                break
            i += 1
        terms.append(sql[start:i])
        fixed = []
        for t in terms:
            tail = t[len(t.rstrip()):]
            body = t.rstrip()
            if not re.search(r"\bNULLS\s+(FIRST|LAST)$", body, re.I):
                body += " NULLS LAST" if re.search(r"\bDESC$", body, re.I) else " NULLS FIRST"
            fixed.append(body + tail)
        out.append(",".join(fixed))
        pos = i
    out.append(sql[pos:])
    return "".join(out)


def primary_keys() -> dict[str, tuple[str, ...]]:
    """table -> its primary key columns, read from the migrations' CREATE TABLE statements."""
    from plantwatch.core.store.migrations import MIGRATIONS

    out: dict[str, tuple[str, ...]] = {}
    for text in MIGRATIONS:
        for stmt in split_script(text):
            renamed = re.match(r"\s*ALTER\s+TABLE\s+(\w+)\s+RENAME\s+TO\s+(\w+)\s*$", stmt, re.I)
            if renamed and renamed.group(1) in out:
                out[renamed.group(2)] = out.pop(renamed.group(1))
            m = re.match(r"\s*CREATE\s+TABLE\s+(\w+)\s*\((.*)\)\s*$", stmt, re.I | re.S)
            if m is None:
                continue
            table = re.search(r"PRIMARY\s+KEY\s*\(([^)]*)\)", m.group(2), re.I)
            col = re.search(r"(?:^|,)\s*(\w+)\s+\w+\s+PRIMARY\s+KEY\b", m.group(2), re.I)
            if table:
                out[m.group(1)] = tuple(c.strip() for c in table.group(1).split(","))
            elif col:
                out[m.group(1)] = (col.group(1),)
    return out


def _json_group_array(sql: str) -> str:
    """json_group_array(x) -> json_agg(x)::text: JSON text, as SQLite returns it."""
    while (m := _JSON_GROUP.search(sql)) is not None:
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        sql = f"{sql[:m.start()]}(json_agg({sql[m.end():i - 1]}))::text{sql[i:]}"
    return sql


_PRAGMA_READ = {
    "user_version": f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA_TABLE}",
    # any commit anywhere moves the WAL position: "something may have changed", as data_version
    "data_version": "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint",
    "integrity_check": "SELECT 'ok'",
    "foreign_keys": "SELECT 0",
}
_PRAGMA = re.compile(r"^\s*PRAGMA\s+(\w+)\s*(?:=\s*(\S+)|\(\s*(\w+)\s*\))?\s*;?\s*$", re.I)
_INSERT_OR = re.compile(r"^\s*INSERT\s+OR\s+(REPLACE|IGNORE)\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.I)


def pragma(sql: str) -> str | None:
    """PostgreSQL for a PRAGMA statement ('' when it means nothing there); None if not one."""
    m = _PRAGMA.match(sql)
    if m is None:
        return None
    name, value, arg = m.group(1).lower(), m.group(2), m.group(3)
    if name == "user_version" and value is not None:
        return f"UPDATE {SCHEMA_TABLE} SET version = {int(value)}"
    if name == "table_info" and arg:
        return ("SELECT ordinal_position - 1, column_name, data_type, 0, column_default, 0 "
                "FROM information_schema.columns WHERE table_schema = current_schema() "
                f"AND table_name = '{arg.lower()}' ORDER BY ordinal_position")
    if value is None and name in _PRAGMA_READ:
        return _PRAGMA_READ[name]
    return ""   # settings of SQLite's own (busy_timeout, journal_mode, application_id...)


def query(sql: str, *, params: bool) -> str:
    """One statement in PostgreSQL's dialect; `params`: placeholders will be bound."""
    p = pragma(sql)
    if p is not None:
        return p
    if re.match(r"^\s*BEGIN\s+(IMMEDIATE|EXCLUSIVE|DEFERRED)\b", sql, re.I):
        return "BEGIN"
    conflict = ""
    m = _INSERT_OR.match(sql)
    if m is not None:
        how, table, cols = m.group(1).upper(), m.group(2), [c.strip() for c in m.group(3).split(",")]
        sql = f"INSERT INTO {table} ({m.group(3)})" + sql[m.end():]
        if how == "IGNORE":
            conflict = " ON CONFLICT DO NOTHING"
        else:
            key = TABLE_KEYS.get(table) or primary_keys()[table]
            sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
            conflict = f" ON CONFLICT ({', '.join(key)}) DO " + (f"UPDATE SET {sets}" if sets else "NOTHING")

    def code(t: str) -> str:
        if params:   # ?N (numbered, SQLite) -> %(pN)s: postgres.py binds the tuple by name
            t = re.sub(r"\?(\d+)", r"%(p\1)s", t.replace("%", "%%")).replace("?", "%s")
        t = _INDEXED_BY.sub("", t)   # planner hints of SQLite's
        t = _json_group_array(_JSON_ARRAY.sub("json_build_array(", t))
        t = re.sub(r"(?<![\w.\"])user(?![\w\"(])", '"user"', t)
        return _nulls_as_sqlite(_group_concat(t))

    out = _map_code(sql, code, (lambda t: t.replace("%", "%%")) if params else (lambda t: t))
    out = out.rstrip().rstrip(";")
    return out + conflict


_DDL_TYPES = (
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.I),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    # a table's PRIMARY KEY (...) lets SQLite store NULLs in it, each distinct: PostgreSQL's UNIQUE
    (re.compile(r"(,\s*)PRIMARY\s+KEY\s*\(", re.I), r"\1UNIQUE ("),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
)


_ROWID_ALIAS = re.compile(r"\s*CREATE\s+TABLE\s+(\w+)\s*\((?:.*,)?\s*(\w+)\s+INTEGER\s+PRIMARY\s+KEY\b", re.I | re.S)
_RENAME = re.compile(r"\s*ALTER\s+TABLE\s+(\w+)\s+RENAME\s+TO\s+(\w+)\s*$", re.I)


def script(text: str) -> list[str]:
    """A migration script as PostgreSQL statements (SQLite-only settings dropped). A table rebuilt
    the SQLite way (made anew, rows copied with their ids, renamed) whose id the database assigns
    gets its identity moved past the ids copied: SQLite's next rowid is always max + 1."""
    out = []
    identities: dict[str, str] = {}
    for stmt in split_script(text):
        if (m := _ROWID_ALIAS.match(stmt)) is not None:
            identities[m.group(1)] = m.group(2)
        if (m := _RENAME.match(stmt)) is not None and m.group(1) in identities:
            table, col = m.group(2), identities.pop(m.group(1))
            out.append(query(stmt, params=False))
            out.append(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), "
                       f"COALESCE(MAX({col}), 0) + 1, false) FROM {table}")
            continue
        if re.match(r"^\s*(CREATE\s+TABLE|ALTER\s+TABLE)\b", stmt, re.I):
            def ddl(t: str) -> str:
                for pat, rep in _DDL_TYPES:
                    t = pat.sub(rep, t)
                return t
            stmt = _map_code(stmt, ddl)
        sql = query(stmt, params=False)
        if sql:
            out.append(sql)
    return out
