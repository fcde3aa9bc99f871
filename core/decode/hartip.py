"""HART-IP (UDP/TCP 5094).

Header (8 bytes, big-endian): version, message type (0 request, 1 response, 2 publish, 3 error,
15 NAK), message id (0 session initiate, 1 session close, 2 keep alive, 3 token-passing PDU,
4 direct PDU, 128 read audit log), status, sequence number16, byte count16 (whole message).
A token-passing PDU: delimiter (bit 7: 5-byte unique address, else 1-byte polling address;
bits 5-6: expansion bytes), address, expansion, command, byte count, then for a slave-to-master
frame (delimiter type 6 ACK, 1 BACK) response code and device status, data, checksum.

A UDP server answers the session initiate from a port of its own, and the session continues
there (Wireshark follows the conversation): the client endpoints that initiated a session on
5094 are remembered (module state, bounded) and their datagrams on other ports are decoded too.

Ops: one per message: code = message id, sub = HART command of a token-passing PDU, trans =
sequence number, direction from the message type, exception = the PDU's response code, or else
the header status, of a response when not 0.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_HARTIP, DIR_OTHER, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import AppResult, PacketView, gather_be16, gather_u8, port_rows

PORT = 5094
_TYPES = {0: DIR_REQUEST, 1: DIR_RESPONSE, 2: DIR_OTHER, 3: DIR_RESPONSE, 15: DIR_RESPONSE}
_MAX_CLIENTS = 4096
_MAX_MESSAGES = 64


def _header_ok(view: PacketView, rows: np.ndarray) -> np.ndarray:
    pos, plen, end = view.span(rows)
    ver, ok = gather_u8(view.data, pos, end)
    mtype, _ = gather_u8(view.data, pos + 1, end)
    count, _ = gather_be16(view.data, pos + 6, end)
    single = count == plen
    tcp = view.ip_proto[rows] == 6
    return ok & (ver == 1) & np.isin(mtype, list(_TYPES)) & (count >= 8) & (plen >= 8) & (single | tcp)


def _ep(view: PacketView, r: int, src: bool) -> tuple[int, int, int]:
    if src:
        return int(view.src_hi[r]), int(view.src_lo[r]), int(view.sport[r])
    return int(view.dst_hi[r]), int(view.dst_lo[r]), int(view.dport[r])


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = np.sort(np.concatenate([port_rows(view, 6, {PORT}), port_rows(view, 17, {PORT})]))
    rows = rows[_header_ok(view, rows)] if rows.size else rows
    clients: set = state.setdefault("clients", set())
    for r in rows.tolist():  # remember who initiated UDP sessions on 5094
        if view.ip_proto[r] == 17 and view.dport[r] == PORT and view.data[view.pay[r] + 2] == 0:
            if len(clients) >= _MAX_CLIENTS:
                clients.clear()
            clients.add(_ep(view, r, True))
    if not clients:
        return rows
    cand = np.flatnonzero((view.ip_proto == 17) & (view.pay_len >= 8)
                          & (view.sport != PORT) & (view.dport != PORT))
    if cand.size:
        cand = cand[_header_ok(view, cand)]
        more = [r for r in cand.tolist()
                if _ep(view, r, True) in clients or _ep(view, r, False) in clients]
        if more:
            rows = np.union1d(rows, np.array(more, np.int64))
    return rows


def parse_message(m: bytes) -> dict:
    mtype, mid, status, seq = m[1], m[2], m[3], (m[4] << 8) | m[5]
    op: dict = {"app": APP_HARTIP, "code": mid, "trans": seq,
                "direction": _TYPES.get(mtype, DIR_OTHER)}
    body = m[8:]
    rc = None
    if mid == 3 and len(body) >= 4:
        delim = body[0]
        i = 1 + (5 if delim & 0x80 else 1) + ((delim >> 5) & 3)
        if i + 1 < len(body):
            op["sub"] = body[i]
            if delim & 7 in (1, 6) and i + 2 < len(body):
                rc = body[i + 2]
    if op["direction"] == DIR_RESPONSE and (rc or status):
        op["exception"] = rc or status
    return op


def walk(payload: bytes) -> list[dict]:
    ops: list[dict] = []
    off = 0
    for _ in range(_MAX_MESSAGES):
        if off + 8 > len(payload) or payload[off] != 1:
            break
        count = struct.unpack_from(">H", payload, off + 6)[0]
        if count < 8 or off + count > len(payload):
            break
        ops.append(parse_message(payload[off : off + count]))
        off += count
    return ops


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    slow: list[dict] = []
    for r in rows.tolist():  # a few messages per second per device: walked per packet
        for op in walk(view.payload(r)):
            op["row"] = r
            slow.append(op)
    cols = pl.DataFrame({"row": rows, "app": np.full(rows.size, APP_HARTIP)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ics.ops_frame(None, slow))
