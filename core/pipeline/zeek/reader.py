"""Read one Zeek log: TSV (with or without its header) or JSON lines, gzip or not.

A log becomes a `ZeekLog`: its name (`#path`, else the file name up to the first dot, so rotated
names like conn.2026-12-04-10-00-00.log.gz are still "conn"), and a frame of strings, one column
per field, nulls for unset fields, plus `_line` (the 1-based line in the file, the evidence).
Values stay strings; the mappers cast what they use. Zeek's TSV escapes (\\xHH, \\\\) are undone
by `unescape` on the few text fields that are shown, never on the whole frame.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from plantwatch.core.pipeline.zeek.fields import headerless_fields


class ZeekLogError(Exception):
    """A log that cannot be read: one line naming the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)


@dataclass
class Header:
    """What the TSV header lines said (kept by the follower across appended chunks)."""
    separator: str = "\t"
    set_separator: str = ","
    empty: str = "(empty)"
    unset: str = "-"
    path: str | None = None
    fields: list[str] | None = None
    json: bool = False


@dataclass
class ZeekLog:
    name: str
    path: str
    frame: pl.DataFrame            # one String column per field, plus `_line` (Int64)
    header: Header = field(default_factory=Header)

    @property
    def height(self) -> int:
        return self.frame.height


def log_name(path: str | Path) -> str:
    return Path(path).name.split(".", 1)[0]


def read_bytes(path: str | Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head == b"\x1f\x8b":
                with gzip.open(fh) as gz:
                    return gz.read()
            return fh.read()
    except (OSError, EOFError) as e:
        raise ZeekLogError(path, f"cannot read: {getattr(e, 'strerror', None) or e}") from None


def read_log(path: str | Path) -> ZeekLog:
    """The whole log at `path`."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # Zeek writes bytes it saw; never fail on them
    return parse_text(text, path)


_SEP = re.compile(r"\\x([0-9a-fA-F]{2})")


def _header_value(v: str) -> str:
    return _SEP.sub(lambda m: chr(int(m.group(1), 16)), v)


def parse_text(text: str, path: str | Path, *, first_line: int = 1,
               header: Header | None = None) -> ZeekLog:
    """Parse complete lines of a log; `first_line` numbers the first one, `header` carries the
    header of a file read in chunks (the follower). The returned header is updated in place."""
    hdr = header or Header()
    name = log_name(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    data: list[str] = []
    nums: list[int] = []
    for i, line in enumerate(lines):
        if not line:
            continue
        if line[0] == "#":
            key, _, value = line[1:].partition(" " if line.startswith("#separator") else hdr.separator)
            if key == "separator":
                hdr.separator = _header_value(value)
            elif key == "set_separator":
                hdr.set_separator = value
            elif key == "empty_field":
                hdr.empty = value
            elif key == "unset_field":
                hdr.unset = value
            elif key == "path":
                hdr.path = value
            elif key == "fields":
                hdr.fields = value.split(hdr.separator)
            continue
        if line[0] == "{":
            hdr.json = True
        data.append(line)
        nums.append(first_line + i)
    if hdr.path:
        name = hdr.path
    if not data:
        frame = pl.DataFrame({c: [] for c in (hdr.fields or [])}, schema={c: pl.String for c in (hdr.fields or [])})
        return ZeekLog(name, str(path), frame.with_columns(pl.Series("_line", [], pl.Int64)), hdr)
    frame = _json_frame(data, path, nums) if hdr.json else _tsv_frame(data, path, hdr, name, nums)
    return ZeekLog(name, str(path), with_key(frame.with_columns(pl.Series("_line", nums, pl.Int64))), hdr)


_ID = ("uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")


def with_key(frame: pl.DataFrame) -> pl.DataFrame:
    """`_key`: the uid with the connection's addresses and ports. A uid is random in a live
    cluster but deterministic in Zeek's test runs (every btest starts at CHhAvVGS1DHFjwGM9), so
    the key, not the bare uid, joins logs and makes the session id."""
    if "uid" not in frame.columns:
        return frame
    parts = [pl.col(c).fill_null("") if c in frame.columns else pl.lit("") for c in _ID]
    return frame.with_columns(pl.concat_str(parts, separator="|").alias("_key"))


def _tsv_frame(data: list[str], path: str | Path, hdr: Header, name: str,
               nums: list[int]) -> pl.DataFrame:
    ncols = data[0].count(hdr.separator) + 1
    fields = hdr.fields or headerless_fields(name, ncols)
    if fields is None:
        raise ZeekLogError(path, f"no #fields header, and {ncols} columns match no known layout of "
                           f"a {name!r} log")
    hdr.fields = fields
    text = "\n".join(data) + "\n"
    frame = None
    # every line has exactly len(fields) - 1 separators iff the whole text has that many times n
    if len(hdr.separator) == 1 and text.count(hdr.separator) == len(data) * (len(fields) - 1):
        try:
            frame = pl.read_csv(text.encode(), separator=hdr.separator, has_header=False, new_columns=fields,
                                schema={f: pl.String for f in fields}, quote_char=None, comment_prefix=None)
        except pl.exceptions.PolarsError:
            frame = None
    if frame is None or frame.height != len(data) or len(hdr.separator) != 1:
        bad = next((k for k, line in enumerate(data) if line.count(hdr.separator) + 1 != len(fields)), None)
        if bad is not None:
            raise ZeekLogError(path, f"line {nums[bad]}: {data[bad].count(hdr.separator) + 1} fields, "
                               f"the header has {len(fields)}")
        frame = pl.DataFrame([line.split(hdr.separator) for line in data],
                             schema={f: pl.String for f in fields}, orient="row")
    return frame.with_columns(
        pl.when(pl.col(f) == hdr.unset).then(None)
        .when(pl.col(f) == hdr.empty).then(pl.lit(""))
        .otherwise(pl.col(f)).alias(f) for f in fields)


def _json_value(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "T" if v else "F"
    if isinstance(v, list):
        return ",".join("" if x is None else str(_json_value(x)) for x in v)
    if isinstance(v, dict):
        return json.dumps(v)
    return str(v)


def _json_frame(data: list[str], path: str | Path, nums: list[int]) -> pl.DataFrame:
    rows: list[dict[str, str | None]] = []
    keys: dict[str, None] = {}
    for k, line in enumerate(data):
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise ZeekLogError(path, f"line {nums[k]}: not JSON ({e.args[0] if e.args else e})") from None
        if not isinstance(rec, dict):
            raise ZeekLogError(path, f"line {nums[k]}: not a JSON object")
        row = {key: _json_value(v) for key, v in rec.items()}
        for key in row:
            keys.setdefault(key)
        rows.append(row)
    if "ts" in keys:  # JSON logs may carry ISO 8601 times (LogAscii::json_timestamps)
        for row in rows:
            ts = row.get("ts")
            if ts and "T" in ts and ts[:4].isdigit():
                row["ts"] = _iso_to_epoch(ts)
    return pl.DataFrame({key: [r.get(key) for r in rows] for key in keys},
                        schema={key: pl.String for key in keys})


def _iso_to_epoch(s: str) -> str | None:
    from datetime import datetime

    try:
        d = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return f"{d.timestamp():.6f}"


def ts_ns(col: str = "ts") -> pl.Expr:
    """Zeek time text ('1334102677.123456') to ns since the epoch, exactly; null when masked."""
    parts = pl.col(col).str.split_exact(".", 1)
    sec = parts.struct.field("field_0").cast(pl.Int64, strict=False)
    frac = parts.struct.field("field_1").fill_null("").str.slice(0, 9).str.pad_end(9, "0")
    return (sec * 1_000_000_000 + frac.cast(pl.Int64, strict=False)).alias(col)


def unescape(s: str | None) -> str | None:
    """Undo Zeek's ASCII writer escapes (\\xHH and \\\\) in one field value."""
    if s is None or "\\" not in s:
        return s
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            if s[i + 1] == "\\":
                out.append("\\")
                i += 2
                continue
            if s[i + 1] == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", s[i + 2:i + 4]):
                out.append(chr(int(s[i + 2:i + 4], 16)))
                i += 4
                continue
        out.append(c)
        i += 1
    return "".join(out)


def record_at(path: str | Path, line: int) -> dict[str, str | None]:
    """The fields of the record on `line` of a log (evidence: its `uid` names the connection in
    every other log of the cluster). Raises ZeekLogError when that line is not a record."""
    log = read_log(path)
    hit = log.frame.filter(pl.col("_line") == line)
    if hit.height == 0:
        raise ZeekLogError(path, f"line {line}: not a record")
    row = hit.row(0, named=True)
    return {k: v for k, v in row.items() if not k.startswith("_")}
