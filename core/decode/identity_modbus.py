"""Modbus identity: Read Device Identification answers (FC 43, MEI type 14), from the responses
modbus.py located.

Response PDU: 0x2B 0x0E, read device id code, conformity level, more follows, next object id,
number of objects, then objects (id, length, value). Object ids 0-6 are the standard ones.
"""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.schema import APP_MODBUS, DIR_RESPONSE
from plantwatch.core.decode.view import PacketView

SOURCE = "modbus"
OBJECTS = {0: "vendor", 1: "product_code", 2: "firmware", 3: "vendor_url", 4: "product",
           5: "model", 6: "user_app"}


def candidates(ops: pl.DataFrame) -> pl.Series:
    return ops.filter((pl.col("app") == APP_MODBUS) & (pl.col("code") == 43) & (pl.col("sub") == 14)
                      & (pl.col("direction") == DIR_RESPONSE) & pl.col("exception").is_null())["row"].unique()


def parse_pdu(pdu: bytes) -> list[tuple[str, str]]:
    """(attribute, value) pairs of one FC 43/14 response PDU."""
    if len(pdu) < 7 or pdu[0] != 0x2B or pdu[1] != 0x0E:
        return []
    out = []
    i = 7
    for _ in range(pdu[6]):
        if i + 2 > len(pdu):
            break
        oid, n = pdu[i], pdu[i + 1]
        val = pdu[i + 2 : i + 2 + n]
        if len(val) < n:
            break
        if oid in OBJECTS:
            out.append((OBJECTS[oid], val.decode("latin-1").strip()))
        i += 2 + n
    return out


def extract(view: PacketView, rows: list[int], state: dict) -> list[tuple[int, tuple[str, str, str, str]]]:
    out = []
    for r in rows:
        p = view.payload(r)
        off = 0
        while off + 8 <= len(p) and p[off + 2] == 0 and p[off + 3] == 0:
            length = (p[off + 4] << 8) | p[off + 5]
            if length < 2 or off + 6 + length > len(p):
                break
            out += [(r, ("", a, v, SOURCE)) for a, v in parse_pdu(p[off + 7 : off + 6 + length])]
            off += 6 + length
    return out
