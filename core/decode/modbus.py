"""Modbus/TCP (TCP 502): MBAP header, function code, exception, MEI/UMAS, reference and count.

Direction is decided by port, as Wireshark does: to 502 is a request, from 502 a response.
The common case (one ADU filling the segment) is decoded vectorised; segments carrying several
ADUs, or anything irregular, are walked per packet. An ADU cut across TCP segments reaches this
module whole, on the segment completing it (core/decode/reassembly.py), as in Wireshark.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_MODBUS, DIR_OTHER, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import AppResult, PacketView, gather_be16, gather_u8, port_rows

PORT = 502
# Requests whose PDU starts with a reference number (FC 23: the read reference; FC 24: the FIFO
# pointer address); and those followed by a count (FC 23: the read count).
_REF_REQ = (1, 2, 3, 4, 5, 6, 15, 16, 22, 23, 24)
_BITS = (1, 2, 15)
_WORDS = (3, 4, 16, 23)
_ECHO_RESP = (5, 6, 15, 16, 22)  # responses that echo reference (and count for 15/16)


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = port_rows(view, 6, {PORT})
    if rows.size == 0:
        return rows
    pos, _, end = view.span(rows)
    proto, ok = gather_be16(view.data, pos + 2, end)
    return rows[ok & (proto == 0) & (view.pay_len[rows] >= 8)]


def _direction(sport: int, dport: int) -> int:
    if dport == PORT and sport != PORT:
        return DIR_REQUEST
    if sport == PORT and dport != PORT:
        return DIR_RESPONSE
    return DIR_OTHER


def parse_pdu(pdu: bytes, direction: int) -> dict:
    """Fields of one Modbus PDU (function code first). Raises IndexError if too short."""
    fc_raw = pdu[0]
    fc = fc_raw & 0x7F
    op: dict = {"code": fc}
    if fc_raw & 0x80:
        op["exception"] = pdu[1]
        return op
    n = len(pdu)
    if fc == 43 and n >= 2:
        op["sub"] = pdu[1]
    elif fc == 8 and n >= 3:
        op["sub"] = (pdu[1] << 8) | pdu[2]
    elif fc == 90 and direction == DIR_REQUEST and n >= 3:
        op["sub"] = pdu[2]  # UMAS function code after the pairing key
    ref_ok = (direction == DIR_REQUEST and fc in _REF_REQ) or (
        direction == DIR_RESPONSE and fc in _ECHO_RESP)
    if ref_ok and n >= 3:
        op["ref"] = (pdu[1] << 8) | pdu[2]
        if (fc in _BITS or fc in _WORDS) and n >= 5 and (direction == DIR_REQUEST or fc in (15, 16)):
            op["count"] = (pdu[3] << 8) | pdu[4]
    return op


def _walk(payload: bytes, direction: int) -> list[dict]:
    ops = []
    off = 0
    while off + 8 <= len(payload):
        if payload[off + 2] | payload[off + 3]:
            break  # protocol id must be 0
        length = (payload[off + 4] << 8) | payload[off + 5]
        if length < 2 or off + 6 + length > len(payload):
            break
        try:
            op = parse_pdu(payload[off + 7 : off + 6 + length], direction)
        except IndexError:
            break
        op["trans"] = (payload[off] << 8) | payload[off + 1]
        op["unit"] = payload[off + 6]
        ops.append(op)
        off += 6 + length
    return ops


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    d = view.data
    pos, plen, end = view.span(rows)
    sport, dport = view.sport[rows], view.dport[rows]
    req = (dport == PORT) & (sport != PORT)
    resp = (sport == PORT) & (dport != PORT)
    direction = np.where(req, DIR_REQUEST, np.where(resp, DIR_RESPONSE, DIR_OTHER))
    length, _ = gather_be16(d, pos + 4, end)
    fc_raw, _ = gather_u8(d, pos + 7, end)
    fc = fc_raw & 0x7F
    exc = (fc_raw & 0x80) != 0
    # Fast path: exactly one ADU, and no function whose fields depend on more than fixed offsets.
    simple = np.isin(fc, _REF_REQ) | exc
    fast = (length >= 2) & (length + 6 == plen) & simple & (plen >= 9)
    f = np.flatnonzero(fast)
    fr = rows[f]
    fp, fe, ffc, fdir, fexc = pos[f], end[f], fc[f], direction[f], exc[f]
    trans, _ = gather_be16(d, fp, fe)
    unit, _ = gather_u8(d, fp + 6, fe)
    exc_code, _ = gather_u8(d, fp + 8, fe)
    ref, ref_in = gather_be16(d, fp + 8, fe)
    cnt, cnt_in = gather_be16(d, fp + 10, fe)
    isreq = fdir == DIR_REQUEST
    has_ref = ~fexc & ref_in & ((isreq & np.isin(ffc, _REF_REQ))
                                | ((fdir == DIR_RESPONSE) & np.isin(ffc, _ECHO_RESP)))
    has_cnt = has_ref & cnt_in & (np.isin(ffc, _BITS + _WORDS) & (isreq | np.isin(ffc, (15, 16))))
    fast_cols = {
        "row": fr, "app": np.full(f.size, APP_MODBUS), "direction": fdir, "code": ffc,
        "unit": unit, "trans": trans, "exception": (exc_code, fexc), "ref": (ref, has_ref),
        "count": (cnt, has_cnt),
    }
    slow: list[dict] = []
    for i in np.flatnonzero(~fast):
        r = int(rows[i])
        for op in _walk(view.payload(r), int(direction[i])):
            op.update(row=r, app=APP_MODBUS, direction=int(direction[i]))
            slow.append(op)
    ops = ics.ops_frame(fast_cols, slow)
    app_rows = np.unique(ops["row"].to_numpy()) if ops.height else np.zeros(0, np.int64)
    cols = pl.DataFrame({"row": app_rows, "app": np.full(app_rows.size, APP_MODBUS)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ops)
