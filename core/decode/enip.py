"""EtherNet/IP (TCP/UDP 44818) with CIP inside; UDP 2222 (I/O) is recognised only.

Encapsulation header (24 bytes, little-endian): command, length, session, status, context,
options. SendRRData (0x6F) / SendUnitData (0x70) carry a common packet format: interface
handle(4) timeout(2) item count(2), items (type, length, data); the CIP message is in the
unconnected data item (0xB2) or the connected data item (0xB1, after a 2-byte sequence count).

Ops: one per CIP message (code = service without the 0x80 reply flag, direction from it,
group = request path class when the path starts with a plain logical class segment,
sub = encapsulation command, exception = general status of a reply); containers are unwrapped
one level: Unconnected Send (0x52 on class 0x06) and Multiple Service Packet (0x0A) give an op
for themselves and one for each embedded message. An encapsulation command without CIP gives an
op with code = command and sub null (see core/decode/ics.py).

Vectorised: one encapsulation filling the payload, either without CIP (List Identity, Register
Session ...) or with the usual two-item CPF holding one CIP request whose path starts with an
8-bit class segment, or one reply that is not a container. Containers (Multiple Service Packet,
Unconnected Send), other paths and several encapsulations per segment are walked per packet.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_ENIP, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import AppResult, PacketView, gather_le16, gather_u8, port_rows

PORT = 44818
IO_PORT = 2222
_CMDS = (0x0000, 0x0001, 0x0004, 0x0063, 0x0064, 0x0065, 0x0066, 0x006F, 0x0070, 0x0072, 0x0073)
_MAX_EMBEDDED = 256


def select(view: PacketView, state: dict) -> np.ndarray:
    enc = np.concatenate([port_rows(view, 6, {PORT}), port_rows(view, 17, {PORT})])
    io = port_rows(view, 17, {IO_PORT})
    if enc.size:
        pos = view.pay[enc]
        cmd, ok = gather_le16(view.data, pos, pos + view.pay_len[enc])
        enc = enc[ok & np.isin(cmd, _CMDS) & (view.pay_len[enc] >= 24)]
    return np.unique(np.concatenate([enc, io]))


def path_class(path: bytes) -> int | None:
    """The class of a CIP EPATH when it is a plain logical class segment (after port segments)."""
    i = 0
    while i + 1 < len(path):
        seg = path[i]
        if seg == 0x20:
            return path[i + 1]
        if seg == 0x21 and i + 3 < len(path):
            return path[i + 2] | (path[i + 3] << 8)
        if seg >> 5 == 0 and not seg & 0x10:  # port segment, 1-byte link address
            i += 2
            continue
        return None
    return None


def parse_cip(msg: bytes, cmd: int, depth: int = 0) -> list[dict]:
    """Ops of one CIP message (and of the messages it embeds, one level)."""
    if len(msg) < 2:
        return []
    svc = msg[0]
    op: dict = {"app": APP_ENIP, "code": svc & 0x7F, "sub": cmd,
                "direction": DIR_RESPONSE if svc & 0x80 else DIR_REQUEST}
    out = [op]
    if svc & 0x80:
        if len(msg) < 4:
            return out
        if msg[2]:
            op["exception"] = msg[2]
        body = msg[4 + 2 * msg[3] :]
        if svc & 0x7F == 0x0A and depth == 0:
            out += _multiple(body, cmd)
        return out
    plen = 2 * msg[1]
    path = msg[2 : 2 + plen]
    if len(path) < plen:
        return out
    cls = path_class(path)
    if cls is not None:
        op["group"] = cls
    body = msg[2 + plen :]
    if depth == 0 and svc == 0x52 and cls == 0x06 and len(body) >= 4:
        size = body[2] | (body[3] << 8)
        inner = body[4 : 4 + size]
        if len(inner) == size:
            out += parse_cip(inner, cmd, depth + 1)
    elif depth == 0 and svc == 0x0A:
        out += _multiple(body, cmd)
    return out


def _multiple(body: bytes, cmd: int) -> list[dict]:
    """The services of a Multiple Service Packet body: count16, offsets16[count], messages."""
    if len(body) < 2:
        return []
    n = body[0] | (body[1] << 8)
    if n > _MAX_EMBEDDED or len(body) < 2 + 2 * n:
        return []
    offs = [body[2 + 2 * k] | (body[3 + 2 * k] << 8) for k in range(n)] + [len(body)]
    out: list[dict] = []
    for k in range(n):
        a, b = offs[k], offs[k + 1]
        if not 0 < a < b <= len(body):
            break
        out += parse_cip(body[a:b], cmd, depth=1)
    return out


def walk(payload: bytes, to_server: bool) -> list[dict]:
    """Ops of every encapsulation message in a TCP segment or UDP datagram."""
    ops: list[dict] = []
    off = 0
    while off + 24 <= len(payload):
        cmd, length = struct.unpack_from("<HH", payload, off)
        if cmd not in _CMDS:
            break
        body = payload[off + 24 : off + 24 + length]
        if len(body) < length:
            break  # continues in the next segment: not reassembled
        cip_ops: list[dict] = []
        if cmd in (0x6F, 0x70) and len(body) >= 8:
            count = body[6] | (body[7] << 8)
            i = 8
            for _ in range(min(count, 16)):
                if i + 4 > len(body):
                    break
                itype, ilen = struct.unpack_from("<HH", body, i)
                data = body[i + 4 : i + 4 + ilen]
                if itype == 0xB2:
                    cip_ops += parse_cip(data, cmd)
                elif itype == 0xB1 and len(data) > 2:
                    cip_ops += parse_cip(data[2:], cmd)
                i += 4 + ilen
        if cip_ops:
            ops += cip_ops
        else:
            ops.append({"app": APP_ENIP, "code": cmd,
                        "direction": DIR_REQUEST if to_server else DIR_RESPONSE})
        off += 24 + length
    return ops


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    d = view.data
    pos, plen, end = view.span(rows)
    cmd, ok = gather_le16(d, pos, end)
    length, _ = gather_le16(d, pos + 2, end)
    io = (view.ip_proto[rows] == 17) & ((view.sport[rows] == IO_PORT) | (view.dport[rows] == IO_PORT))
    enc = ~io & ok & np.isin(cmd, _CMDS)
    to_server = view.dport[rows] == PORT
    single = enc & (24 + length == plen)
    fast_hdr = single & ~np.isin(cmd, (0x6F, 0x70))
    cip = single & np.isin(cmd, (0x6F, 0x70))
    # the usual CPF: 2 items, address item then the data item ending the payload, holding one
    # CIP message whose path starts with an 8-bit class segment (or a reply that is no container)
    body = pos + 24
    n_items, _ = gather_le16(d, body + 6, end)
    len1, _ = gather_le16(d, body + 10, end)
    it2 = body + 12 + len1
    type2, ok2 = gather_le16(d, it2, end)
    len2, _ = gather_le16(d, it2 + 2, end)
    msg = np.where(type2 == 0xB1, it2 + 6, it2 + 4)
    svc, ok_s = gather_u8(d, msg, end)
    b1, ok_b1 = gather_u8(d, msg + 1, end)
    b2, ok_b2 = gather_u8(d, msg + 2, end)
    b3, _ = gather_u8(d, msg + 3, end)
    reply = (svc & 0x80) != 0
    cip_ok = (cip & (n_items == 2) & ok2 & np.isin(type2, (0xB1, 0xB2)) & (it2 + 4 + len2 == end)
              & ok_s & ok_b1 & ok_b2 & ((type2 == 0xB2) | (len2 > 2)))
    req_simple = ~reply & (b1 >= 1) & (msg + 2 + 2 * b1 <= end) & (b2 == 0x20) & (svc != 0x0A) & ~(
        (svc == 0x52) & (b3 == 0x06))
    rep_simple = reply & (svc != 0x8A) & (msg + 4 <= end)
    fast_cip = cip_ok & (req_simple | rep_simple)
    fast = fast_hdr | fast_cip
    f = np.flatnonzero(fast_hdr)
    g = np.flatnonzero(fast_cip)
    r_g = reply[g]
    fast_cols = {
        "row": np.concatenate([rows[f], rows[g]]),
        "app": np.full(f.size + g.size, APP_ENIP),
        "code": np.concatenate([cmd[f], svc[g] & 0x7F]),
        "direction": np.concatenate([np.where(to_server[f], DIR_REQUEST, DIR_RESPONSE),
                                     np.where(r_g, DIR_RESPONSE, DIR_REQUEST)]),
        "sub": (np.concatenate([cmd[f], cmd[g]]),
                np.concatenate([np.zeros(f.size, bool), np.ones(g.size, bool)])),
        "group": (np.concatenate([np.zeros(f.size, np.int64), b3[g]]),
                  np.concatenate([np.zeros(f.size, bool), ~r_g])),
        "exception": (np.concatenate([np.zeros(f.size, np.int64), b2[g]]),
                      np.concatenate([np.zeros(f.size, bool), r_g & (b2[g] != 0)])),
    }
    slow: list[dict] = []
    for i in np.flatnonzero(enc & ~fast):
        r = int(rows[i])
        try:
            ops = walk(view.payload(r), bool(to_server[i]))
        except (IndexError, struct.error):
            continue
        for op in ops:
            op["row"] = r
            slow.append(op)
    ops_df = ics.ops_frame(fast_cols, slow)
    mine = rows[io | enc]
    cols = pl.DataFrame({"row": mine, "app": np.full(mine.size, APP_ENIP)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ops_df)
