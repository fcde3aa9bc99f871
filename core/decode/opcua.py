"""OPC UA binary (TCP 4840, and any TCP port): message type, and the service node id.

Every message starts `type(3) chunk(1) size32le`; HEL/ACK/OPN/CLO/MSG/ERR/RHE. A final MSG
chunk ('F') holds secure channel id, token id, sequence number, request id, then the encoded
type node id of the body. With Sign&Encrypt the body is ciphertext: a node id is reported only
when it is a namespace-0 numeric id of a known service request or response, which encrypted
bytes are most unlikely to spell.

An OPN chunk holds secure channel id, security policy URI, sender certificate, receiver
thumbprint (three length-prefixed byte strings, -1 for null), sequence number, request id, then
the node id of OpenSecureChannel (446 request, 449 response), always in plaintext.

Ops: one per message (service = message type; MSG, OPN: code = node id numeric when readable).
Walked per packet (several messages per segment possible); intermediate chunks ('C') and
aborts ('A') give an op without a code.

Off 4840 (servers are often set up on another port) a segment is OPC UA when it starts with a
message header whose size fits in the segment, or continues a connection that exchanged
HEL/ACK (module state: those flows, bounded); a message larger than its segment is reported
on the segment holding its header (TCP reassembly, as tshark does, is not done here).
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_OPCUA, DIR_OTHER, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import AppResult, PacketView, gather_le32, proto_rows

PORT = 4840
TYPES = {b"HEL": DIR_REQUEST, b"ACK": DIR_RESPONSE, b"OPN": DIR_OTHER, b"CLO": DIR_REQUEST,
         b"MSG": DIR_OTHER, b"ERR": DIR_RESPONSE, b"RHE": DIR_OTHER}
_MAX_MESSAGES = 64
_MAX_FLOWS = 4096
_HEADS = np.array([int.from_bytes(t, "little") for t in TYPES], dtype=np.int64)
_FIRST = np.zeros(256, dtype=bool)
_FIRST[[t[0] for t in TYPES]] = True


def _flow(view: PacketView, r: int) -> tuple:
    a = (int(view.src_hi[r]), int(view.src_lo[r]), int(view.sport[r]))
    b = (int(view.dst_hi[r]), int(view.dst_lo[r]), int(view.dport[r]))
    return (a, b) if a < b else (b, a)


def select(view: PacketView, state: dict) -> np.ndarray:
    cand = proto_rows(view, 6)[0]
    cand = cand[view.pay_len[cand] >= 8]
    cand = cand[_FIRST[view.data[view.pay[cand]]]]  # cheap first-byte filter before the rest
    if cand.size == 0:
        return cand
    pos, plen, end = view.span(cand)
    head, ok = gather_le32(view.data, pos, end)
    cand = cand[ok & np.isin(head & 0xFFFFFF, _HEADS) & np.isin(head >> 24, (0x46, 0x43, 0x41))]
    if cand.size == 0:
        return cand
    pos, plen, end = view.span(cand)
    size, _ = gather_le32(view.data, pos + 4, end)
    std = (view.sport[cand] == PORT) | (view.dport[cand] == PORT)
    fits = (size >= 8) & (size <= plen)
    flows: set = state.setdefault("flows", set())
    c0 = view.data[pos]
    for i in np.flatnonzero(fits & ~std & np.isin(c0, (ord("H"), ord("A")))).tolist():
        if len(flows) >= _MAX_FLOWS:
            flows.clear()
        flows.add(_flow(view, int(cand[i])))
    known = np.zeros(cand.size, bool)
    if flows:
        for i in np.flatnonzero(~std & ~fits).tolist():
            known[i] = _flow(view, int(cand[i])) in flows
    return cand[std | fits | known]


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


def _opn_body(msg: bytes) -> bytes:
    """The bytes after the asymmetric security header, sequence number and request id."""
    off = 12
    for _ in range(3):
        if off + 4 > len(msg):
            return b""
        n = struct.unpack_from("<i", msg, off)[0]
        off += 4 + max(n, 0)
    return msg[off + 8 : off + 15]


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
        body = _opn_body(msg) if mtype == b"OPN" else msg[24:31] if mtype == b"MSG" else b""
        if body and chunk == ord("F"):
            nid = node_id(body)
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
