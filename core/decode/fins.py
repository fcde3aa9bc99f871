"""Omron FINS (UDP 9600, and TCP 9600 behind the FINS/TCP header).

FINS frame: ICF RSV GCT DNA DA1 DA2 SNA SA1 SA2 SID (10 bytes), command MRC SRC, then the
parameters of a command or the end code (MRES SRES) and data of a response. ICF bit 6 set means
response. FINS/TCP wraps it: 'FINS', length32 (bytes that follow), command32 (0/1 node address
exchange, 2 FINS frame, 3 error), error code32; a FINS frame follows command 2.

Ops: one per FINS frame: code = command, direction from ICF, trans = SID, unit = DA1 (destination
node), exception = end code of a response when not 0; memory area read/write/fill requests also
area (memory area code), ref (word address << 8 | bit) and count (number of items).
The FINS/TCP node address exchange gives no op (as the COTP connect of S7).

Vectorised: a UDP datagram, or one FINS/TCP message filling the segment. Walked per packet:
several FINS/TCP messages in a segment. One cut by the segment end is not reassembled.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_FINS, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import (
    AppResult,
    PacketView,
    gather_be16,
    gather_be32,
    gather_u8,
    port_rows,
)

PORT = 9600
MAGIC = 0x46494E53  # 'FINS'
_MEM = (0x0101, 0x0102, 0x0103)  # commands whose parameters start area, address, bit, count
_MAX_MESSAGES = 64


def select(view: PacketView, state: dict) -> np.ndarray:
    udp = port_rows(view, 17, {PORT})
    tcp = port_rows(view, 6, {PORT})
    if udp.size:
        pos, plen, end = view.span(udp)
        icf, _ = gather_u8(view.data, pos, end)
        udp = udp[(plen >= 12) & ((icf & 0xBE) == 0x80)]
    if tcp.size:
        pos, _, end = view.span(tcp)
        magic, ok = gather_be32(view.data, pos, end)
        tcp = tcp[ok & (magic == MAGIC) & (view.pay_len[tcp] >= 16)]
    return np.sort(np.concatenate([udp, tcp]))


def parse_frame(f: bytes) -> dict | None:
    """One FINS frame (from ICF); None when too short to hold a command."""
    if len(f) < 12:
        return None
    resp = bool(f[0] & 0x40)
    code = (f[10] << 8) | f[11]
    op: dict = {"app": APP_FINS, "code": code, "trans": f[9], "unit": f[4],
                "direction": DIR_RESPONSE if resp else DIR_REQUEST}
    if resp:
        if len(f) >= 14 and (f[12] or f[13]):
            op["exception"] = (f[12] << 8) | f[13]
    elif code in _MEM and len(f) >= 18:
        op["area"] = f[12]
        op["ref"] = (f[13] << 16) | (f[14] << 8) | f[15]
        op["count"] = (f[16] << 8) | f[17]
    return op


def walk_tcp(payload: bytes) -> list[dict]:
    """Ops of the FINS/TCP messages of one segment."""
    ops: list[dict] = []
    off = 0
    for _ in range(_MAX_MESSAGES):
        if off + 16 > len(payload) or payload[off : off + 4] != b"FINS":
            break
        length, cmd = struct.unpack_from(">II", payload, off + 4)
        if length < 8 or off + 8 + length > len(payload):
            break
        if cmd == 2:
            op = parse_frame(payload[off + 16 : off + 8 + length])
            if op is not None:
                ops.append(op)
        off += 8 + length
    return ops


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    d = view.data
    pos, plen, end = view.span(rows)
    tcp = view.ip_proto[rows] == 6
    length, _ = gather_be32(d, pos + 4, end)
    tcmd, _ = gather_be32(d, pos + 8, end)
    single = tcp & (8 + length == plen)
    frame = np.where(tcp, pos + 16, pos)
    fast = ~tcp | (single & (tcmd == 2) & (plen >= 28))
    f = np.flatnonzero(fast)
    b, e = frame[f], end[f]
    icf, _ = gather_u8(d, b, e)
    sid, _ = gather_u8(d, b + 9, e)
    da1, _ = gather_u8(d, b + 4, e)
    code, _ = gather_be16(d, b + 10, e)
    endc, end_ok = gather_be16(d, b + 12, e)
    area, _ = gather_u8(d, b + 12, e)
    addr, _ = gather_be16(d, b + 13, e)
    bit, _ = gather_u8(d, b + 15, e)
    cnt, mem_ok = gather_be16(d, b + 16, e)
    resp = (icf & 0x40) != 0
    mem = ~resp & np.isin(code, _MEM) & mem_ok
    fast_cols = {
        "row": rows[f], "app": np.full(f.size, APP_FINS), "code": code, "trans": sid, "unit": da1,
        "direction": np.where(resp, DIR_RESPONSE, DIR_REQUEST),
        "exception": (endc, resp & end_ok & (endc != 0)),
        "area": (area, mem), "ref": ((addr << 8) | bit, mem), "count": (cnt, mem),
    }
    slow: list[dict] = []
    for i in np.flatnonzero(tcp & ~single):
        r = int(rows[i])
        for op in walk_tcp(view.payload(r)):
            op["row"] = r
            slow.append(op)
    cols = pl.DataFrame({"row": rows, "app": np.full(rows.size, APP_FINS)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ics.ops_frame(fast_cols, slow))
