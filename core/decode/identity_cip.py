"""EtherNet/IP and CIP identity: List Identity replies, and the CIP Identity object (class 0x01,
instance 1) answered to Get_Attributes_All (0x01), Get_Attribute_List (0x03) or
Get_Attribute_Single (0x0E).

A CIP reply does not repeat the path it answers, so the requests are remembered (bounded) per
connection, encapsulation session and sender context; only unconnected messaging (Send RR Data) is
followed: a connected reply (Send Unit Data) belongs to a connection whose path was set by a
Forward Open this module does not track, so it is not attributed. A request routed through an
Unconnected Send (0x52 to the Connection Manager) with a route path names a module behind the
responder, say the CPU in backplane slot 0 behind a 1756-ENBT: its identity is recorded as that
component, never as the responder's own.
"""

from __future__ import annotations

import struct

import polars as pl

from plantwatch.core.decode.identity import flow_key
from plantwatch.core.decode.schema import APP_ENIP, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import PacketView

SOURCE = "enip"
_LIST_IDENTITY = 0x63
_SEND_RR = 0x6F
_MAX_PENDING = 4096
_SERVICES = (0x01, 0x03, 0x0E)  # Get_Attributes_All, Get_Attribute_List, Get_Attribute_Single
# bytes of an Identity attribute's value (Get_Attribute_List replies carry no lengths)
_SIZE = {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 4, 8: 1, 9: 2, 10: 1}
# Identity object attribute id -> attribute
_ATTR = {1: "vendor_id", 2: "device_type", 3: "product_code", 4: "firmware", 6: "serial", 7: "product"}


def candidates(ops: pl.DataFrame) -> pl.Series:
    c = pl.col("code")
    listid = (c == _LIST_IDENTITY) & pl.col("sub").is_null() & (pl.col("direction") == DIR_RESPONSE)
    # requests to the Identity class (an Unconnected Send's embedded request is an op of its own,
    # with its class); replies to Get_Attribute(s) of any class: whether one answers a remembered
    # Identity request is known only from the flow, checked before its bytes are read
    cip = (pl.col("sub") == _SEND_RR) & (c.is_in(list(_SERVICES)) & (
        (pl.col("direction") == DIR_REQUEST) & (pl.col("group") == 0x01) | (pl.col("direction") == DIR_RESPONSE)))
    return ops.filter((pl.col("app") == APP_ENIP) & (listid | cip))["row"].unique()


def identity_fields(b: bytes) -> list[tuple[str, str]]:
    """Attributes 1-7 laid out as in List Identity and Get_Attributes_All: vendor, device type,
    product code (UINT each), revision (major, minor USINT), status (WORD), serial (UDINT),
    product name (SHORT_STRING)."""
    if len(b) < 15:
        return []
    vendor, dtype, pcode = struct.unpack_from("<HHH", b, 0)
    major, minor = b[6], b[7]
    serial = struct.unpack_from("<I", b, 10)[0]
    n = b[14]
    name = b[15 : 15 + n].decode("latin-1").strip()
    return [("vendor_id", str(vendor)), ("device_type", str(dtype)), ("product_code", str(pcode)),
            ("firmware", f"{major}.{minor:03d}"), ("serial", f"0x{serial:08x}"), ("product", name)]


def _single(attr: int, b: bytes) -> list[tuple[str, str]]:
    if attr in (1, 2, 3) and len(b) >= 2:
        return [(_ATTR[attr], str(b[0] | (b[1] << 8)))]
    if attr == 4 and len(b) >= 2:
        return [("firmware", f"{b[0]}.{b[1]:03d}")]
    if attr == 6 and len(b) >= 4:
        return [("serial", f"0x{struct.unpack_from('<I', b)[0]:08x}")]
    if attr == 7 and len(b) >= 1:
        return [("product", b[1 : 1 + b[0]].decode("latin-1").strip())]
    return []


def _attribute_list(b: bytes) -> list[tuple[str, str]]:
    """A Get_Attribute_List reply: count, then per attribute its id, status and (when the status
    is success) its value; an attribute of unknown size ends the walk."""
    out: list[tuple[str, str]] = []
    if len(b) < 2:
        return out
    i = 2
    for _ in range(min(struct.unpack_from("<H", b, 0)[0], 32)):
        if i + 4 > len(b):
            break
        attr, status = struct.unpack_from("<HH", b, i)
        i += 4
        if status:
            continue
        size = 1 + b[i] if attr == 7 and i < len(b) else _SIZE.get(attr)
        if size is None or i + size > len(b):
            break
        out += _single(attr, b[i : i + size])
        i += size
    return out


def _list_identity(body: bytes) -> list[tuple[str, str]]:
    if len(body) < 2:
        return []
    i = 2
    for _ in range(min(body[0] | (body[1] << 8), 4)):
        if i + 4 > len(body):
            break
        itype, ilen = struct.unpack_from("<HH", body, i)
        item = body[i + 4 : i + 4 + ilen]
        if itype == 0x0C and len(item) >= 18:
            return identity_fields(item[18:])  # after protocol version (2) and socket address (16)
        i += 4 + ilen
    return []


def _logical(path: bytes) -> tuple[int | None, int | None, int | None]:
    """(class, instance, attribute) of a path of 8/16-bit logical segments."""
    vals: dict[int, int] = {}
    i = 0
    while i + 1 < len(path):
        seg = path[i]
        kind = (seg >> 2) & 0x07
        if seg >> 5 != 1:
            return None, None, None
        if seg & 0x03 == 0:
            vals[kind] = path[i + 1]
            i += 2
        elif seg & 0x03 == 1 and i + 3 < len(path):
            vals[kind] = path[i + 2] | (path[i + 3] << 8)
            i += 4
        else:
            return None, None, None
    return vals.get(0), vals.get(1), vals.get(4)


def _route(rp: bytes) -> str:
    """A route path of port segments as text ("backplane slot 0", "port 2 address 10")."""
    parts = []
    i = 0
    while i + 1 < len(rp) and rp[i] >> 5 == 0:
        seg = rp[i]
        port = seg & 0x0F
        if seg & 0x10:
            n = rp[i + 1]
            addr = rp[i + 2 : i + 2 + n].decode("latin-1")
            i += 2 + n + (n & 1)
        else:
            addr = str(rp[i + 1])
            i += 2
        parts.append(f"backplane slot {addr}" if port == 1 else f"port {port} address {addr}")
    return " / ".join(parts)


def _request(msg: bytes) -> tuple[str, int, int | None] | None:
    """(component, service, attribute) of an Identity request, unwrapping an Unconnected Send."""
    if len(msg) < 2:
        return None
    svc, words = msg[0], msg[1]
    path = msg[2 : 2 + 2 * words]
    body = msg[2 + 2 * words :]
    cls, inst, attr = _logical(path)
    if svc == 0x52 and cls == 0x06 and len(body) >= 4:
        size = body[2] | (body[3] << 8)
        inner = body[4 : 4 + size]
        rest = body[4 + size + (size & 1) :]
        inner_req = _request(inner)
        if inner_req is None or inner_req[0] or len(rest) < 2:
            return None
        return _route(rest[2 : 2 + 2 * rest[0]]), inner_req[1], inner_req[2]
    if svc in _SERVICES and cls == 0x01 and inst in (None, 1):
        return "", svc, attr
    return None


def _cip_data(payload: bytes) -> tuple[int, bytes, bytes] | None:
    """(command, session + sender context, CIP message of the unconnected item)."""
    if len(payload) < 24:
        return None
    cmd, length = struct.unpack_from("<HH", payload, 0)
    body = payload[24 : 24 + length]
    ctx = payload[4:8] + payload[12:20]
    if cmd == _LIST_IDENTITY:
        return cmd, ctx, body
    if cmd != _SEND_RR or len(body) < 8:
        return None
    i = 8
    for _ in range(min(body[6] | (body[7] << 8), 8)):
        if i + 4 > len(body):
            break
        itype, ilen = struct.unpack_from("<HH", body, i)
        if itype == 0xB2:
            return cmd, ctx, body[i + 4 : i + 4 + ilen]
        i += 4 + ilen
    return None


def extract(view: PacketView, rows: list[int], state: dict) -> list[tuple[int, tuple[str, str, str, str]]]:
    pending: dict = state.setdefault("cip_pending", {})   # (flow, session + context) -> request
    flows: dict = state.setdefault("cip_flows", {})       # flow -> requests pending on it
    out = []
    for r in rows:
        if view.sport[r] == 44818 and int(view.data[int(view.pay[r])]) != _LIST_IDENTITY and (
                not flows or flow_key(view, r, reverse=True) not in flows):
            continue  # a reply on a flow with no Identity request waiting: not read
        try:
            got = _cip_data(view.payload(r))
            if got is None:
                continue
            cmd, ctx, msg = got
            if cmd == _LIST_IDENTITY:
                out += [(r, ("", a, v, SOURCE)) for a, v in _list_identity(msg)]
                continue
            if not msg:
                continue
            if not msg[0] & 0x80:
                req = _request(msg)
                if req is not None:
                    if len(pending) >= _MAX_PENDING:
                        pending.clear()
                        flows.clear()
                    fk = flow_key(view, r)
                    if (*fk, ctx) not in pending:
                        flows[fk] = flows.get(fk, 0) + 1
                    pending[(*fk, ctx)] = req
                continue
            back = flow_key(view, r, reverse=True)
            req = pending.pop((*back, ctx), None)
            if req is not None:
                flows[back] -= 1
                if not flows[back]:
                    del flows[back]
            if req is None or len(msg) < 4 or msg[2] != 0 or (msg[0] & 0x7F) != req[1]:
                continue
            data = msg[4 + 2 * msg[3] :]
            attrs = identity_fields(data) if req[1] == 0x01 else _attribute_list(data) if req[1] == 0x03 \
                else _single(req[2] or 0, data)
            out += [(r, (req[0], a, v, SOURCE)) for a, v in attrs]
        except (IndexError, struct.error):
            continue
    return out
