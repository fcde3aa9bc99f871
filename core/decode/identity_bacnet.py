"""BACnet identity: I-Am (device instance, vendor id) and the device object's properties in
ReadProperty-ACK and ReadPropertyMultiple-ACK (vendor name, model name, firmware revision,
application software version, object name, vendor identifier), from the APDUs bacnet.py located.

Tags (ASHRAE 135 clause 20.2): tag number in the high nibble (15: next byte), class bit 0x08
(context), length/value/type in the low 3 bits (5: extended length, 6/7: opening/closing tag of a
context tag). Segmented acknowledgements are not put back together (rare for these properties).
"""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.bacnet import apdu_offset
from plantwatch.core.decode.schema import APP_BACNET, DIR_RESPONSE
from plantwatch.core.decode.view import PacketView

SOURCE = "bacnet"
DEVICE_OBJECT = 8
# device object property id -> attribute
PROPERTIES = {121: "vendor", 120: "vendor_id", 70: "model", 44: "firmware", 12: "software",
              77: "name"}
_I_AM, _READ_PROPERTY, _READ_PROPERTY_MULTIPLE = 0, 12, 14


def candidates(ops: pl.DataFrame) -> pl.Series:
    iam = (pl.col("sub") == 1) & (pl.col("code") == _I_AM)
    ack = (pl.col("sub") == 0) & pl.col("code").is_in([_READ_PROPERTY, _READ_PROPERTY_MULTIPLE]) & (
        pl.col("direction") == DIR_RESPONSE)
    return ops.filter((pl.col("app") == APP_BACNET) & (iam | ack))["row"].unique()


def _tag(b: bytes, i: int) -> tuple[int, bool, int, int, int]:
    """(tag number, context, length-or-kind, value offset, next offset); kind 6/7 open/close.
    Raises IndexError when cut."""
    t = b[i]
    num, ctx, lvt = t >> 4, bool(t & 0x08), t & 0x07
    j = i + 1
    if num == 15:
        num = b[j]
        j += 1
    if ctx and lvt in (6, 7):
        return num, ctx, lvt, j, j
    if not ctx and num == 1:  # application boolean: the value is in the tag
        return num, ctx, 0, j, j
    n = lvt
    if lvt == 5:
        n = b[j]
        j += 1
        if n == 254:
            n = (b[j] << 8) | b[j + 1]
            j += 2
        elif n == 255:
            n = int.from_bytes(b[j : j + 4], "big")
            j += 4
    if j + n > len(b):
        raise IndexError("tag cut")
    return num, ctx, n, j, j + n


def _value(b: bytes, i: int) -> str | None:
    """An application-tagged unsigned or character string at `i`, as text."""
    num, ctx, n, v, _ = _tag(b, i)
    if ctx:
        return None
    if num == 2:
        return str(int.from_bytes(b[v : v + n], "big"))
    if num == 7 and n >= 1:
        charset = b[v]
        raw = b[v + 1 : v + n]
        if charset == 0:
            return raw.decode("utf-8", "replace").strip()
        if charset == 4:  # UCS-2
            return raw.decode("utf-16-be", "replace").strip()
        return raw.decode("latin-1").strip()
    return None


def _object_id(b: bytes, v: int) -> tuple[int, int]:
    x = int.from_bytes(b[v : v + 4], "big")
    return x >> 22, x & 0x3FFFFF


def i_am(a: bytes) -> list[tuple[str, str]]:
    num, ctx, n, v, nxt = _tag(a, 2)
    if ctx or num != 12 or n != 4:
        return []
    otype, inst = _object_id(a, v)
    if otype != DEVICE_OBJECT:
        return []
    out = [("device_instance", str(inst))]
    i = nxt
    for _ in range(2):  # max APDU length accepted, segmentation supported
        i = _tag(a, i)[4]
    vendor = _value(a, i)
    if vendor is not None:
        out.append(("vendor_id", vendor))
    return out


def read_property_ack(a: bytes) -> list[tuple[str, str]]:
    i = 3
    num, ctx, n, v, i = _tag(a, i)
    if not ctx or num != 0 or n != 4 or _object_id(a, v)[0] != DEVICE_OBJECT:
        return []
    num, ctx, n, v, i = _tag(a, i)
    if not ctx or num != 1:
        return []
    prop = int.from_bytes(a[v : v + n], "big")
    num, ctx, kind, _, j = _tag(a, i)
    if ctx and num == 2 and kind not in (6, 7):  # array index: not an identity property
        return []
    if prop not in PROPERTIES or not (ctx and num == 3 and kind == 6):
        return []
    val = _value(a, j)
    return [(PROPERTIES[prop], val)] if val is not None else []


def read_property_multiple_ack(a: bytes) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i = 3
    while i < len(a):
        num, ctx, n, v, i = _tag(a, i)
        if not ctx or num != 0 or n != 4:
            return out
        is_device = _object_id(a, v)[0] == DEVICE_OBJECT
        num, ctx, kind, _, i = _tag(a, i)
        if not (ctx and num == 1 and kind == 6):
            return out
        prop = None
        while i < len(a):
            num, ctx, kind, v, nxt = _tag(a, i)
            if ctx and num == 1 and kind == 7:
                i = nxt
                break
            if ctx and num == 2 and kind not in (6, 7):
                prop = int.from_bytes(a[v : v + kind], "big")
                i = nxt
            elif ctx and num == 3 and kind not in (6, 7):
                prop = None  # an array element: not an identity property
                i = nxt
            elif ctx and num in (4, 5) and kind == 6:
                if num == 4 and is_device and prop in PROPERTIES:
                    val = _value(a, nxt)
                    if val is not None:
                        out.append((PROPERTIES[prop], val))
                i = _skip_to_close(a, nxt, num)
            else:
                return out
    return out


def _skip_to_close(a: bytes, i: int, num: int) -> int:
    depth = 1
    while i < len(a):
        n, ctx, kind, _, nxt = _tag(a, i)
        if ctx and kind == 6:
            depth += 1
        elif ctx and kind == 7:
            depth -= 1
            if depth == 0 and n == num:
                return nxt
        i = nxt
    raise IndexError("no closing tag")


def parse_apdu(a: bytes) -> list[tuple[str, str]]:
    if len(a) < 2:
        return []
    t = a[0] >> 4
    if t == 1 and a[1] == _I_AM:
        return i_am(a)
    if t == 3 and not a[0] & 0x08 and len(a) >= 3:
        if a[2] == _READ_PROPERTY:
            return read_property_ack(a)
        if a[2] == _READ_PROPERTY_MULTIPLE:
            return read_property_multiple_ack(a)
    return []


def component(p: bytes) -> str:
    """Who behind the sender stated it: the origin of a Forwarded-NPDU (the sender is a BBMD)
    and/or a device on another BACnet network (NPDU source specifier: the sender, or the
    origin, is its router; one router speaks for many devices); "" when the sender speaks for
    itself."""
    parts = []
    i = 4  # the NPDU after the BVLC header (and a forwarded message's origin address)
    if p[1] == 0x04:
        parts.append(f"forwarded from {p[4]}.{p[5]}.{p[6]}.{p[7]}:{(p[8] << 8) | p[9]}")
        i = 10
    ctrl = p[i + 1]
    i += 2
    if ctrl & 0x20:
        i += 3 + p[i + 2]
    if ctrl & 0x08:
        snet = (p[i] << 8) | p[i + 1]
        parts.append(f"network {snet} address {p[i + 3 : i + 3 + p[i + 2]].hex()}")
    return ", ".join(parts)


def extract(view: PacketView, rows: list[int], state: dict) -> list[tuple[int, tuple[str, str, str, str]]]:
    out = []
    for r in rows:
        p = view.payload(r)
        i = apdu_offset(p)
        if i is None:
            continue
        try:
            attrs = parse_apdu(p[i:])
            comp = component(p) if attrs else ""
        except IndexError:
            continue
        out += [(r, (comp, a, v, SOURCE)) for a, v in attrs]
    return out
