"""DNP3 over TCP/UDP 20000: link header, transport and application headers.

A link frame is `05 64 len ctrl dst16le src16le crc16`, then the user data in blocks of at most
16 bytes, each followed by a 2-byte CRC; `len` counts ctrl+dst+src (5) plus the user data,
without CRCs. The transport byte and the application header (AL ctrl, function, and for
responses IIN16, then the first object header) all sit in the first data block (user-data offsets
0..7 < 16), so they are read at fixed offsets.

Ops: one per link frame whose transport segment is the first of a fragment (FIR): code = AL
function, sub = first object group, unit = link destination, trans = AL sequence. Link-only
frames (no user data) and non-first transport segments give no op. A link frame cut across TCP
segments arrives whole on the segment completing it (core/decode/reassembly.py); DNP3 transport
reassembly is not done: a fragment spanning several transport segments is reported on its first
(tshark reports it on the last).
Vectorised when one link frame fills the payload; several frames per segment are walked.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_DNP3, DIR_OTHER, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import (
    AppResult,
    PacketView,
    gather_be16,
    gather_le16,
    gather_u8,
    port_rows,
)

PORT = 20000


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = np.concatenate([port_rows(view, 6, {PORT}), port_rows(view, 17, {PORT})])
    if rows.size == 0:
        return rows
    rows = np.sort(rows)
    pos = view.pay[rows]
    start, ok = gather_be16(view.data, pos, pos + view.pay_len[rows])
    return rows[ok & (start == 0x0564) & (view.pay_len[rows] >= 10)]


def frame_len(length: np.ndarray | int) -> np.ndarray | int:
    """Bytes on the wire of a link frame whose length byte is `length` (>= 5)."""
    user = length - 5
    return 10 + user + 2 * ((user + 15) // 16)


def _direction(func: int) -> int:
    if func in (129, 131):
        return DIR_RESPONSE
    if func == 130:
        return DIR_OTHER
    return DIR_REQUEST


def parse_frame(b: bytes) -> dict | None:
    """The op of one link frame (bytes from 05 64), or None when it carries none."""
    if len(b) < 10 or b[0] != 0x05 or b[1] != 0x64:
        return None
    length = b[2]
    user = length - 5
    if user < 3 or len(b) < 10 + 3:
        return None
    tr = b[10]
    if not tr & 0x40:  # not the first segment of a fragment
        return None
    func = b[12]
    op: dict = {"app": APP_DNP3, "unit": b[4] | (b[5] << 8),
                "trans": b[11] & 0x0F, "code": func, "direction": _direction(func)}
    obj = 15 if func in (129, 130, 131) else 13  # user-data offset 5 or 3, after the 10-byte header
    if user >= obj - 10 + 1 and len(b) > obj:
        op["sub"] = b[obj]
    return op


def walk(payload: bytes) -> list[dict]:
    ops = []
    off = 0
    while off + 10 <= len(payload) and payload[off] == 0x05 and payload[off + 1] == 0x64:
        length = payload[off + 2]
        if length < 5:
            break
        n = frame_len(length)
        if off + n > len(payload):
            break  # cut: reassembly.py holds it for the segment completing it
        op = parse_frame(payload[off : off + n])
        if op is not None:
            ops.append(op)
        off += n
    return ops


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    d = view.data
    pos, plen, end = view.span(rows)
    length, _ = gather_u8(d, pos + 2, end)
    fast = (length >= 5) & (frame_len(length) == plen)
    f = np.flatnonzero(fast)
    fp, fe, fl = pos[f], end[f], length[f]
    dst, _ = gather_le16(d, fp + 4, fe)
    tr, _ = gather_u8(d, fp + 10, fe)
    alc, _ = gather_u8(d, fp + 11, fe)
    func, _ = gather_u8(d, fp + 12, fe)
    has_app = (fl - 5 >= 3) & ((tr & 0x40) != 0)
    resp = np.isin(func, (129, 130, 131))
    obj_off = np.where(resp, 15, 13)
    grp, _ = gather_u8(d, fp + obj_off, fe)
    has_obj = has_app & (fl - 5 >= obj_off - 10 + 1)
    sel = np.flatnonzero(has_app)
    direction = np.where(np.isin(func, (129, 131)), DIR_RESPONSE,
                         np.where(func == 130, DIR_OTHER, DIR_REQUEST))
    fast_cols = {
        "row": rows[f][sel], "app": np.full(sel.size, APP_DNP3), "direction": direction[sel],
        "code": func[sel], "sub": (grp[sel], has_obj[sel]), "unit": dst[sel],
        "trans": alc[sel] & 0x0F,
    }
    slow: list[dict] = []
    for i in np.flatnonzero(~fast):
        r = int(rows[i])
        for op in walk(view.payload(r)):
            op["row"] = r
            slow.append(op)
    ops = ics.ops_frame(fast_cols, slow)
    cols = pl.DataFrame({"row": rows, "app": np.full(rows.size, APP_DNP3)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ops)
