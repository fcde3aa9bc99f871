"""BACnet/IP (UDP 47808): BVLC, NPDU, APDU type and service choice.

BVLC: 0x81, function, length16. Original-Unicast/Broadcast (0x0A/0x0B) and Distribute-Broadcast
(0x09) carry the NPDU right after; Forwarded-NPDU (0x04) after a 6-byte original address.
NPDU: version 1, control; DNET/DLEN/DADR when bit 0x20, SNET/SLEN/SADR when bit 0x08, a hop
count when DNET is present; bit 0x80 = network-layer message (no APDU).

Ops: one per APDU that names a service: confirmed request (0), unconfirmed request (1),
simple/complex ACK (2/3) and error (5); code = service choice, sub = 0 confirmed / 1 unconfirmed.
Vectorised when the NPDU has no network addresses (the usual case on one IP network); other
NPDUs are walked per packet.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_BACNET, DIR_OTHER, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import AppResult, PacketView, gather_u8, port_rows

PORT = 47808
_NPDU_FUNCS = (0x04, 0x09, 0x0A, 0x0B)
_UNCONF_DIR = {8: DIR_REQUEST, 7: DIR_REQUEST, 0: DIR_RESPONSE, 1: DIR_RESPONSE}


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = port_rows(view, 17, {PORT})
    if rows.size == 0:
        return rows
    pos = view.pay[rows]
    b, ok = gather_u8(view.data, pos, pos + view.pay_len[rows])
    return rows[ok & (b == 0x81) & (view.pay_len[rows] >= 4)]


def apdu_op(apdu: bytes) -> dict | None:
    """The op of one APDU, or None for APDUs without a service choice."""
    if not apdu:
        return None
    t = apdu[0] >> 4
    if t == 0:
        svc_at = 5 if apdu[0] & 0x08 else 3
        if len(apdu) > svc_at:
            return {"code": apdu[svc_at], "sub": 0, "direction": DIR_REQUEST}
    elif t == 1 and len(apdu) > 1:
        return {"code": apdu[1], "sub": 1, "direction": _UNCONF_DIR.get(apdu[1], DIR_OTHER)}
    elif t in (2, 5) and len(apdu) > 2:
        return {"code": apdu[2], "sub": 0, "direction": DIR_RESPONSE}
    elif t == 3:
        svc_at = 4 if apdu[0] & 0x08 else 2
        if len(apdu) > svc_at:
            return {"code": apdu[svc_at], "sub": 0, "direction": DIR_RESPONSE}
    return None


def parse(payload: bytes) -> dict | None:
    """BVLC + NPDU walk to the APDU; the op, or None."""
    i = apdu_offset(payload)
    return None if i is None else apdu_op(payload[i:])


def apdu_offset(payload: bytes) -> int | None:
    """Where the APDU starts after BVLC and NPDU; None for network-layer messages and non-BACnet."""
    if len(payload) < 4 or payload[0] != 0x81 or payload[1] not in _NPDU_FUNCS:
        return None
    i = 10 if payload[1] == 0x04 else 4
    if len(payload) < i + 2 or payload[i] != 0x01:
        return None
    ctrl = payload[i + 1]
    if ctrl & 0x80:
        return None  # network-layer message
    i += 2
    if ctrl & 0x20:
        if len(payload) < i + 3:
            return None
        i += 3 + payload[i + 2]
    if ctrl & 0x08:
        if len(payload) < i + 3:
            return None
        i += 3 + payload[i + 2]
    if ctrl & 0x20:
        i += 1  # hop count
    return i


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    d = view.data
    pos, _, end = view.span(rows)
    func, _ = gather_u8(d, pos + 1, end)
    npdu = np.where(func == 0x04, pos + 10, pos + 4)
    ver, v_ok = gather_u8(d, npdu, end)
    ctrl, c_ok = gather_u8(d, npdu + 1, end)
    a = npdu + 2
    b0, ok0 = gather_u8(d, a, end)
    b1, ok1 = gather_u8(d, a + 1, end)
    b2, ok2 = gather_u8(d, a + 2, end)
    b3, ok3 = gather_u8(d, a + 3, end)
    t = b0 >> 4
    plain = np.isin(func, _NPDU_FUNCS) & v_ok & c_ok & (ver == 1) & ((ctrl & 0xA8) == 0) & ok0
    unseg = (b0 & 0x08) == 0
    # the rest (segmented, routed) is walked per packet
    fast = plain & ((t == 1) & ok1 | (t == 0) & unseg & ok3 | np.isin(t, (2, 5)) & ok2
                    | (t == 3) & unseg & ok2 | np.isin(t, (4, 6, 7)))
    has_op = fast & np.isin(t, (0, 1, 2, 3, 5))
    code = np.select([t == 0, t == 1, np.isin(t, (2, 5)), t == 3], [b3, b1, b2, b2], 0)
    direction = np.select(
        [t == 0, t == 1],
        [DIR_REQUEST, np.where(np.isin(b1, (7, 8)), DIR_REQUEST,
                               np.where(np.isin(b1, (0, 1)), DIR_RESPONSE, DIR_OTHER))],
        DIR_RESPONSE)
    f = np.flatnonzero(has_op)
    fast_cols = {"row": rows[f], "app": np.full(f.size, APP_BACNET), "code": code[f],
                 "sub": (t[f] == 1).astype(np.int64), "direction": direction[f]}
    slow: list[dict] = []
    for i in np.flatnonzero(~fast):
        r = int(rows[i])
        op = parse(view.payload(r))
        if op is not None:
            op.update(row=r, app=APP_BACNET)
            slow.append(op)
    ops = ics.ops_frame(fast_cols, slow)
    cols = pl.DataFrame({"row": rows, "app": np.full(rows.size, APP_BACNET)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ops)
