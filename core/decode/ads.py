"""Beckhoff ADS over AMS/TCP (TCP 48898), and the AMS/UDP route discovery (UDP 48899).

AMS/TCP: reserved16 (0), length32le, then the 32-byte AMS header: target net id (6), target port
(2), source net id (6), source port (2), command id, state flags (bit 0: response), data length32,
error code32, invoke id32 (all little-endian), then the ADS data. Requests of Read (2), Write (3),
Add Notification (6) and Read Write (9) start index group32, index offset32, length32; Write
Control (5) starts ADS state16, device state16. Responses start with the ADS result32 (not the
Device Notification, 8).

Ops: one per AMS packet: code = command, direction from the state flags, trans = invoke id,
exception = AMS error code, or else the ADS result of a response, when not 0; requests with an
index also area = index group (when it fits 31 bits), ref = index offset, count = length (Read
Write: the read length); Write Control: sub = requested ADS state, count = its data length.
AMS/UDP (magic 03 66 14 71, invoke id32, service id32, bit 31 = response): group = 1,
code = service id without the response bit (1 route discovery, 6 add route), trans = invoke id.

Vectorised: one AMS/TCP packet filling the segment, every UDP datagram. Walked per packet:
several AMS packets in one segment; one cut by the segment end is not reassembled.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_ADS, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import AppResult, PacketView, gather_le16, gather_le32, port_rows

TCP_PORT = 48898
UDP_PORT = 48899
UDP_MAGIC = 0x71146603
_INDEXED = (2, 3, 6, 9)
_RESULT = (1, 2, 3, 4, 5, 6, 7, 9)  # responses that start with the ADS result
_MAX_PACKETS = 64


def select(view: PacketView, state: dict) -> np.ndarray:
    tcp = port_rows(view, 6, {TCP_PORT})
    udp = port_rows(view, 17, {UDP_PORT})
    if tcp.size:
        pos, _, end = view.span(tcp)
        res, ok = gather_le16(view.data, pos, end)
        tcp = tcp[ok & (res == 0) & (view.pay_len[tcp] >= 38)]
    if udp.size:
        pos, _, end = view.span(udp)
        magic, ok = gather_le32(view.data, pos, end)
        udp = udp[ok & (magic == UDP_MAGIC) & (view.pay_len[udp] >= 12)]
    return np.sort(np.concatenate([tcp, udp]))


def _fits(v: int) -> int | None:
    return v if v < 1 << 31 else None


def parse_ams(p: bytes) -> dict | None:
    """One AMS packet (from the AMS header); None when shorter than the header."""
    if len(p) < 32:
        return None
    cmd, flags, _, err, invoke = struct.unpack_from("<HHIII", p, 16)
    resp = bool(flags & 1)
    op: dict = {"app": APP_ADS, "code": cmd, "trans": invoke,
                "direction": DIR_RESPONSE if resp else DIR_REQUEST}
    data = p[32:]
    if err:
        op["exception"] = err
    elif resp and cmd in _RESULT and len(data) >= 4:
        result = struct.unpack_from("<I", data)[0]
        if result:
            op["exception"] = result
    if not resp and cmd in _INDEXED and len(data) >= 12:
        ig, io, n = struct.unpack_from("<III", data)
        op.update(area=_fits(ig), ref=io, count=n)
    elif not resp and cmd == 5 and len(data) >= 8:
        op["sub"] = data[0] | (data[1] << 8)
        op["count"] = struct.unpack_from("<I", data, 4)[0]
    return op


def walk_tcp(payload: bytes) -> list[dict]:
    ops: list[dict] = []
    off = 0
    for _ in range(_MAX_PACKETS):
        if off + 38 > len(payload) or payload[off] | payload[off + 1]:
            break
        length = struct.unpack_from("<I", payload, off + 2)[0]
        if length < 32 or off + 6 + length > len(payload):
            break
        op = parse_ams(payload[off + 6 : off + 6 + length])
        if op is not None:
            ops.append(op)
        off += 6 + length
    return ops


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    d = view.data
    pos, plen, end = view.span(rows)
    tcp = view.ip_proto[rows] == 6
    length, _ = gather_le32(d, pos + 2, end)
    single = tcp & (6 + length == plen)
    # AMS/TCP, one packet per segment
    f = np.flatnonzero(single)
    a, e = pos[f] + 6, end[f]
    cmd, _ = gather_le16(d, a + 16, e)
    flags, _ = gather_le16(d, a + 18, e)
    err, _ = gather_le32(d, a + 24, e)
    invoke, _ = gather_le32(d, a + 28, e)
    w0, ok0 = gather_le32(d, a + 32, e)
    io, io_ok = gather_le32(d, a + 36, e)
    n, ok12 = gather_le32(d, a + 40, e)
    resp = (flags & 1) != 0
    result = resp & np.isin(cmd, _RESULT) & ok0
    exc = np.where(err != 0, err, np.where(result, w0, 0))
    indexed = ~resp & np.isin(cmd, _INDEXED) & ok12
    ctl = ~resp & (cmd == 5) & io_ok
    # AMS/UDP
    u = np.flatnonzero(~tcp)
    ue = end[u]
    uinv, _ = gather_le32(d, pos[u] + 4, ue)
    svc, _ = gather_le32(d, pos[u] + 8, ue)
    cat = np.concatenate
    no_u = np.zeros(u.size, bool)
    fast_cols = {
        "row": cat([rows[f], rows[u]]), "app": np.full(f.size + u.size, APP_ADS),
        "code": cat([cmd, svc & 0x7FFFFFFF]), "trans": cat([invoke, uinv]),
        "direction": cat([np.where(resp, DIR_RESPONSE, DIR_REQUEST),
                          np.where(svc >> 31, DIR_RESPONSE, DIR_REQUEST)]),
        "group": (cat([np.zeros(f.size, np.int64), np.ones(u.size, np.int64)]),
                  cat([np.zeros(f.size, bool), ~no_u])),
        "exception": (cat([exc, np.zeros(u.size, np.int64)]), cat([exc != 0, no_u])),
        "area": (cat([w0, np.zeros(u.size, np.int64)]), cat([indexed & (w0 < 1 << 31), no_u])),
        "ref": (cat([io, np.zeros(u.size, np.int64)]), cat([indexed, no_u])),
        "count": (cat([np.where(ctl, io, n), np.zeros(u.size, np.int64)]), cat([indexed | ctl, no_u])),
        "sub": (cat([w0 & 0xFFFF, np.zeros(u.size, np.int64)]), cat([ctl, no_u])),
    }
    slow: list[dict] = []
    for i in np.flatnonzero(tcp & ~single):
        r = int(rows[i])
        for op in walk_tcp(view.payload(r)):
            op["row"] = r
            slow.append(op)
    cols = pl.DataFrame({"row": rows, "app": np.full(rows.size, APP_ADS)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ics.ops_frame(fast_cols, slow))
