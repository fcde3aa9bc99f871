"""PROFINET DCP identity: Identify responses (ServiceID 5, response), in which a device announces
its type of station (DeviceVendorValue), name of station, vendor and device id and IP address.

DCP rides on Ethernet without IP: the device is the IP address its IP block announces (an
answer without one is left out, as the inventory keys devices by IP address).
"""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.addr import v4_to_pair
from plantwatch.core.decode.schema import APP_PROFINET
from plantwatch.core.decode.view import PacketView

SOURCE = "profinet"
_IDENTIFY_RESPONSE = (5 << 8) | 1


def candidates(ops: pl.DataFrame) -> pl.Series:
    return ops.filter((pl.col("app") == APP_PROFINET) & (pl.col("code") == _IDENTIFY_RESPONSE))["row"].unique()


def parse_identify(buf: bytes) -> tuple[list[tuple[str, str]], int | None]:
    """(attributes, IPv4 as an integer) of one DCP Identify response (from the FrameID)."""
    if len(buf) < 12:
        return [], None
    end = min(len(buf), 12 + ((buf[10] << 8) | buf[11]))
    out: list[tuple[str, str]] = []
    ip = None
    off = 12
    while off + 6 <= end:
        key = (buf[off] << 8) | buf[off + 1]
        blen = (buf[off + 2] << 8) | buf[off + 3]
        val = buf[off + 6 : off + 4 + blen]  # after the 2-byte BlockInfo
        if off + 4 + blen > end:
            break
        if key == 0x0201 and val:
            out.append(("product", val.decode("latin-1").strip()))
        elif key == 0x0202 and val:
            out.append(("name", val.decode("latin-1").strip()))
        elif key == 0x0203 and len(val) >= 4:
            out += [("vendor_id", str((val[0] << 8) | val[1])), ("device_id", str((val[2] << 8) | val[3]))]
        elif key == 0x0102 and len(val) >= 4:
            ip = int.from_bytes(val[:4], "big")
        off += 4 + blen + (blen & 1)
    return out, ip


def extract(view: PacketView, rows: list[int], state: dict) -> list[tuple[int, tuple]]:
    if view.l3 is None:
        return []
    out = []
    for r in rows:
        start = int(view.l3[r])
        if start < 0:
            continue
        attrs, ip = parse_identify(view.data[start : int(view.end[r])].tobytes())
        if ip is None or ip == 0:
            continue
        hi, lo = v4_to_pair(ip)
        out += [(r, ("", a, v, SOURCE, hi, lo)) for a, v in attrs]
    return out
