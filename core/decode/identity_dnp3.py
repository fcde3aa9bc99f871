"""DNP3 identity: device attributes (group 0) in responses, from the link frames dnp3.py located.

A response to a read of g0 (a master asks for v254, all attributes, or single variations) holds
one object header per attribute: group 0, the variation naming the attribute, qualifier 0x00 or
0x01 (start/stop index: the attribute set, 0 the standard one), then per index a data type, a
length and the value. Visible strings (data type 1) of the variations in VARIATIONS are kept.
The objects are read while they are group 0 (the size of other groups' objects is not known
here) and only from a fragment's first transport segment (dnp3.py does not reassemble transport
segments).
"""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode import dnp3
from plantwatch.core.decode.schema import APP_DNP3
from plantwatch.core.decode.view import PacketView

SOURCE = "dnp3"
VARIATIONS = {242: "firmware", 243: "hardware", 245: "location", 246: "user_id", 247: "name",
              248: "serial", 250: "product", 252: "vendor"}
_VSTR = 1
_MAX_OBJECTS = 64


def candidates(ops: pl.DataFrame) -> pl.Series:
    return ops.filter((pl.col("app") == APP_DNP3) & pl.col("code").is_in([129, 130])
                      & (pl.col("sub") == 0))["row"].unique()


def user_data(frame: bytes) -> bytes:
    """A link frame's user data without its block CRCs."""
    n = frame[2] - 5
    out = bytearray()
    off = 10
    while n > 0 and off < len(frame):
        take = min(16, n)
        out += frame[off : off + take]
        off += take + 2
        n -= take
    return bytes(out)


def parse_fragment(app: bytes) -> list[tuple[str, str]]:
    """(attribute, value) pairs of an application response (from its AL control byte)."""
    out: list[tuple[str, str]] = []
    if len(app) < 4 or app[1] not in (129, 130):
        return out
    off = 4
    for _ in range(_MAX_OBJECTS):
        if off + 3 > len(app) or app[off] != 0:
            break
        var, qual = app[off + 1], app[off + 2]
        if qual == 0x00 and off + 5 <= len(app):
            start, stop, off = app[off + 3], app[off + 4], off + 5
        elif qual == 0x01 and off + 7 <= len(app):
            start = app[off + 3] | (app[off + 4] << 8)
            stop = app[off + 5] | (app[off + 6] << 8)
            off += 7
        else:
            break
        if stop < start:
            break
        for _ in range(min(stop - start + 1, _MAX_OBJECTS)):
            if off + 2 > len(app):
                return out
            dtype, n = app[off], app[off + 1]
            value = app[off + 2 : off + 2 + n]
            if len(value) < n:
                return out
            if dtype == _VSTR and var in VARIATIONS and start == 0:
                text = value.decode("latin-1").strip()
                if text:
                    out.append((VARIATIONS[var], text))
            off += 2 + n
    return out


def extract(view: PacketView, rows: list[int], state: dict) -> list[tuple[int, tuple]]:
    out = []
    for r in rows:
        p = view.payload(r)
        off = 0
        while off + 10 <= len(p) and p[off] == 0x05 and p[off + 1] == 0x64 and p[off + 2] >= 5:
            n = dnp3.frame_len(p[off + 2])
            data = user_data(p[off : off + n])
            if len(data) >= 5 and data[0] & 0x40:
                out += [(r, ("", a, v, SOURCE)) for a, v in parse_fragment(data[1:])]
            off += n
    return out
