"""OPC UA binary (TCP 4840): message type, and the service node id of plaintext MSG chunks.

Every message starts `type(3) chunk(1) size32le`; HEL/ACK/OPN/CLO/MSG/ERR/RHE. A final MSG
chunk ('F') holds secure channel id, token id, sequence number, request id, then the encoded
type node id of the body. With Sign&Encrypt the body is ciphertext: a node id is reported only
when it is a namespace-0 numeric id of a known service request or response, which encrypted
bytes are most unlikely to spell.

Ops: one per message (service = message type; MSG: code = node id numeric when readable).
Walked per packet (several messages per segment possible); intermediate chunks ('C') and
aborts ('A') give an op without a code.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_OPCUA, DIR_OTHER, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import AppResult, PacketView, gather_u8, port_rows

PORT = 4840
TYPES = {b"HEL": DIR_REQUEST, b"ACK": DIR_RESPONSE, b"OPN": DIR_OTHER, b"CLO": DIR_REQUEST,
         b"MSG": DIR_OTHER, b"ERR": DIR_RESPONSE, b"RHE": DIR_OTHER}
_MAX_MESSAGES = 64


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = port_rows(view, 6, {PORT})
    if rows.size == 0:
        return rows
    pos, _, end = view.span(rows)
    c0, ok = gather_u8(view.data, pos, end)
    c3, _ = gather_u8(view.data, pos + 3, end)
    return rows[ok & np.isin(c0, (ord("H"), ord("A"), ord("O"), ord("C"), ord("M"), ord("E"),
                                  ord("R")))
                & np.isin(c3, (ord("F"), ord("C"), ord("A"))) & (view.pay_len[rows] >= 8)]


def node_id(b: bytes) -> int | None:
    """A namespace-0 numeric node id from its binary encoding (two-, four-byte or numeric)."""
    if not b:
        return None
    enc = b[0]
    if enc == 0x00 and len(b) >= 2:
        return b[1]
    if enc == 0x01 and len(b) >= 4 and b[1] == 0:
        return b[2] | (b[3] << 8)
    if enc == 0x02 and len(b) >= 7 and b[1] == 0 and b[2] == 0:
        return struct.unpack_from("<I", b, 3)[0]
    return None


def walk(payload: bytes) -> list[dict]:
    ops: list[dict] = []
    off = 0
    for _ in range(_MAX_MESSAGES):
        if off + 8 > len(payload):
            break
        mtype = payload[off : off + 3]
        chunk = payload[off + 3]
        size = struct.unpack_from("<I", payload, off + 4)[0]
        if mtype not in TYPES or chunk not in b"FCA" or size < 8:
            break
        msg = payload[off : off + size]
        op: dict = {"app": APP_OPCUA, "service": mtype.decode("ascii"), "direction": TYPES[mtype]}
        if mtype == b"MSG" and chunk == ord("F"):
            nid = node_id(msg[24:31])
            if nid is not None and (nid in ics.OPCUA_SERVICE or nid in ics.OPCUA_RESPONSE_NAMES):
                op["code"] = nid
                op["direction"] = DIR_REQUEST if nid in ics.OPCUA_SERVICE else DIR_RESPONSE
        ops.append(op)
        off += size
    return ops


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    slow: list[dict] = []
    seen: list[int] = []
    for r in rows.tolist():
        try:
            ops = walk(view.payload(r))
        except struct.error:
            continue
        if ops:
            seen.append(r)
        for op in ops:
            op["row"] = r
            slow.append(op)
    cols = pl.DataFrame({"row": seen, "app": [APP_OPCUA] * len(seen)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ics.ops_frame(None, slow))
