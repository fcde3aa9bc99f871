"""DHCP (BOOTP with the magic cookie) on UDP 67/68.

Per packet: message type (option 53), host name (option 12), requested address (option 50, dotted)
and the client hardware address (chaddr, as a uint64, when it is a 6-byte Ethernet address).
Options in the sname/file fields (option 52 overload) are not read.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode.schema import APP_DHCP, PACKETS
from plantwatch.core.decode.view import AppResult, PacketView, port_rows

PORTS = frozenset({67, 68})
_COOKIE = 0x63825363
_COLUMNS = ("dhcp_type", "dhcp_hostname", "dhcp_req_ip", "dhcp_chaddr")
_SCHEMA = {"row": pl.Int64(), "app": pl.UInt8(), **{c: PACKETS[c] for c in _COLUMNS}}


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = port_rows(view, 17, PORTS)
    rows = rows[view.pay_len[rows] >= 240]
    p = view.pay[rows] + 236
    d = view.data
    cookie = ((d[p].astype(np.int64) << 24) | (d[p + 1].astype(np.int64) << 16)
              | (d[p + 2].astype(np.int64) << 8) | d[p + 3])
    return rows[cookie == _COOKIE]


def parse(msg: bytes) -> dict[str, object] | None:
    if len(msg) < 240 or int.from_bytes(msg[236:240], "big") != _COOKIE:
        return None
    out: dict[str, object] = dict.fromkeys(_COLUMNS)
    if msg[1] == 1 and msg[2] == 6:  # htype Ethernet, hlen 6
        out["dhcp_chaddr"] = int.from_bytes(msg[28:34], "big")
    pos = 240
    n = len(msg)
    while pos < n:
        code = msg[pos]
        if code == 255:
            break
        if code == 0:
            pos += 1
            continue
        if pos + 2 > n:
            break
        ln = msg[pos + 1]
        body = msg[pos + 2 : pos + 2 + ln]
        pos += 2 + ln
        if len(body) < ln:
            break
        if code == 53 and ln >= 1 and out["dhcp_type"] is None:
            out["dhcp_type"] = body[0]
        elif code == 12 and out["dhcp_hostname"] is None:
            # tshark shows the string up to its first NUL; bytes above 0x7f become U+FFFD.
            out["dhcp_hostname"] = body.split(b"\0", 1)[0].decode("ascii", errors="replace")
        elif code == 50 and ln == 4 and out["dhcp_req_ip"] is None:
            out["dhcp_req_ip"] = ".".join(str(b) for b in body)
    return out


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    cols: dict[str, list] = {"row": [], "app": [], **{c: [] for c in _COLUMNS}}
    for r in rows:
        res = parse(view.payload(int(r)))
        if res is None:
            continue
        cols["row"].append(int(r))
        cols["app"].append(APP_DHCP)
        for c in _COLUMNS:
            cols[c].append(res[c])
    return AppResult(columns=pl.DataFrame(cols, schema=_SCHEMA))
