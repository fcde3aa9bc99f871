"""IEEE C37.118.2 synchrophasor frames (TCP 4712, UDP 4713).

Every frame: SYNC (0xAA, then frame type in bits 4-6 and version in bits 0-3), FRAMESIZE16,
IDCODE16, SOC32, FRACSEC32, ..., CHK16 (big-endian). Frame types: 0 data, 1 header, 2 CFG-1,
3 CFG-2, 4 command, 5 CFG-3. A command frame holds CMD16 after FRACSEC: 1 turn off transmission,
2 turn on, 3 send header, 4 send CFG-1, 5 send CFG-2, 6 send CFG-3, 8 extended frame.

Ops: one per frame: code = frame type, sub = command, unit = IDCODE; direction: command frames
request, header and configuration frames response, data frames other (a stream the PDC turned on).

Vectorised: one frame filling the payload (the data stream). Walked per packet: several frames
in one segment; a frame cut by the segment end is not reassembled.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_C37118, DIR_OTHER, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import AppResult, PacketView, gather_be16, gather_u8, port_rows

TCP_PORT = 4712
UDP_PORT = 4713
_MAX_FRAMES = 256


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = np.sort(np.concatenate([port_rows(view, 6, {TCP_PORT}), port_rows(view, 17, {UDP_PORT})]))
    if rows.size == 0:
        return rows
    pos, _, end = view.span(rows)
    sync, ok = gather_u8(view.data, pos, end)
    b1, _ = gather_u8(view.data, pos + 1, end)
    return rows[ok & (sync == 0xAA) & (((b1 >> 4) & 7) <= 5) & (view.pay_len[rows] >= 16)]


def _direction(ftype: np.ndarray) -> np.ndarray:
    return np.where(ftype == 4, DIR_REQUEST, np.where(ftype == 0, DIR_OTHER, DIR_RESPONSE))


def walk(payload: bytes) -> list[dict]:
    ops: list[dict] = []
    off = 0
    for _ in range(_MAX_FRAMES):
        if off + 16 > len(payload) or payload[off] != 0xAA:
            break
        ftype = (payload[off + 1] >> 4) & 7
        size, idcode = struct.unpack_from(">HH", payload, off + 2)
        if ftype > 5 or size < 16 or off + size > len(payload):
            break
        op: dict = {"app": APP_C37118, "code": ftype, "unit": idcode,
                    "direction": int(_direction(np.array([ftype]))[0])}
        if ftype == 4 and size >= 18:
            op["sub"] = struct.unpack_from(">H", payload, off + 14)[0]
        ops.append(op)
        off += size
    return ops


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    d = view.data
    pos, plen, end = view.span(rows)
    b1, _ = gather_u8(d, pos + 1, end)
    size, _ = gather_be16(d, pos + 2, end)
    idcode, _ = gather_be16(d, pos + 4, end)
    cmd, cmd_ok = gather_be16(d, pos + 14, end)
    ftype = (b1 >> 4) & 7
    fast = size == plen
    f = np.flatnonzero(fast)
    fcmd = (ftype[f] == 4) & cmd_ok[f] & (size[f] >= 18)
    fast_cols = {
        "row": rows[f], "app": np.full(f.size, APP_C37118), "code": ftype[f], "unit": idcode[f],
        "direction": _direction(ftype[f]), "sub": (cmd[f], fcmd),
    }
    slow: list[dict] = []
    for i in np.flatnonzero(~fast):
        r = int(rows[i])
        for op in walk(view.payload(r)):
            op["row"] = r
            slow.append(op)
    cols = pl.DataFrame({"row": rows, "app": np.full(rows.size, APP_C37118)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ics.ops_frame(fast_cols, slow))
