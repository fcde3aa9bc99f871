"""OPC UA identity: the server's application description in GetEndpoints responses (service 431)
and CreateSession responses (464), and its BuildInfo in Read responses (634) that return the
ServerStatus variable (or BuildInfo) as a whole, from the messages opcua.py located.

Each EndpointDescription carries the server's ApplicationDescription (application URI, product
URI, application name) and its application instance certificate (whose subject is kept). Only
unencrypted bodies parse: with Sign&Encrypt opcua.py reports no service code, so no candidate.

These responses are often larger than a TCP segment (a few certificates): the message is
collected from the segments of its flow direction that follow the one holding its header, in
sequence order (a retransmission is skipped, a gap drops it), and reported on the segment that
completes it, as tshark does. Bounded: at most _MAX_PENDING messages held, each <= _MAX_MESSAGE.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from plantwatch.core.decode.identity import clean, flow_key
from plantwatch.core.decode.schema import APP_OPCUA, DIR_RESPONSE
from plantwatch.core.decode.tls_cert import cert_cached
from plantwatch.core.decode.view import PacketView

SOURCE = "opcua"
GET_ENDPOINTS_RESPONSE, CREATE_SESSION_RESPONSE = 431, 464
_MAX_MESSAGE = 1 << 20
_MAX_PENDING = 16
_MAX_ENDPOINTS = 64
_MAX_DEPTH = 4  # nested DiagnosticInfo, DataValue, Variant
READ_RESPONSE = 634
SERVER_STATUS_BINARY, BUILD_INFO_BINARY = 864, 340   # ExtensionObject encoding ids
# Variant built-in types of fixed size: Boolean, SByte, Byte, (U)Int16/32/64, Float, Double,
# DateTime, Guid, StatusCode
_FIXED = {1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 4, 8: 8, 9: 8, 10: 4, 11: 8, 13: 8, 14: 16, 19: 4}
# BuildInfo's strings in order; its product URI is left to the endpoints (one attribute, one
# statement of it, so two wordings never look like a change)
_BUILD_INFO = ("", "vendor", "product", "software", "build")


class _Short(Exception):
    """The body ends before the structure it announces."""


class _Reader:
    def __init__(self, buf: bytes, off: int) -> None:
        self.buf, self.off = buf, off

    def take(self, n: int) -> bytes:
        if n < 0 or self.off + n > len(self.buf):
            raise _Short
        out = self.buf[self.off : self.off + n]
        self.off += n
        return out

    def i32(self) -> int:
        return struct.unpack("<i", self.take(4))[0]

    def byte(self) -> int:
        return self.take(1)[0]

    def bytestring(self) -> bytes | None:
        n = self.i32()
        return None if n < 0 else self.take(n)

    def string(self) -> str:
        b = self.bytestring()
        return "" if b is None else b.decode("utf-8", "replace")

    def node_id(self) -> int | None:
        """Reads a (Expanded)NodeId; its number when it is a numeric id in namespace 0."""
        enc = self.byte()
        kind = enc & 0x0F
        num: int | None = None
        if kind == 0:
            num = self.byte()
        elif kind == 1:
            b = self.take(3)
            num = b[1] | (b[2] << 8) if b[0] == 0 else None
        elif kind == 2:
            ns, n = struct.unpack("<HI", self.take(6))
            num = n if ns == 0 else None
        elif kind in (3, 5):
            self.take(2)
            self.bytestring()
        elif kind == 4:
            self.take(18)
        else:
            raise _Short
        if enc & 0x80:
            self.bytestring()  # namespace URI (ExpandedNodeId)
            num = None
        if enc & 0x40:
            self.take(4)       # server index
        return num

    def variant(self, depth: int = 0) -> tuple[int | None, bytes | None]:
        """Reads a Variant; (type id, body) of a scalar ExtensionObject with a binary body, else
        (None, None)."""
        enc = self.byte()
        vtype = enc & 0x3F
        if enc & 0x80:
            for _ in range(self.count()):
                self._scalar(vtype, depth)
            if enc & 0x40:
                for _ in range(self.count()):
                    self.take(4)
            return None, None
        return self._scalar(vtype, depth)

    def _scalar(self, vtype: int, depth: int) -> tuple[int | None, bytes | None]:
        if vtype in _FIXED:
            self.take(_FIXED[vtype])
        elif vtype in (12, 15, 16):        # String, ByteString, XmlElement
            self.bytestring()
        elif vtype in (17, 18):            # NodeId, ExpandedNodeId
            self.node_id()
        elif vtype == 20:                  # QualifiedName
            self.take(2)
            self.bytestring()
        elif vtype == 21:
            self.localized_text()
        elif vtype == 22:                  # ExtensionObject
            type_id = self.node_id()
            enc = self.byte()
            body = self.bytestring() if enc in (1, 2) else None
            return (type_id, body) if enc == 1 else (None, None)
        elif vtype in (23, 24) and depth < _MAX_DEPTH:  # DataValue, Variant
            if vtype == 23:
                self.data_value(depth + 1)
            else:
                self.variant(depth + 1)
        elif vtype == 25:
            self.diagnostic_info()
        elif vtype != 0:
            raise _Short
        return None, None

    def data_value(self, depth: int = 0) -> tuple[int | None, bytes | None]:
        mask = self.byte()
        found = self.variant(depth) if mask & 0x01 else (None, None)
        for bit, n in ((0x02, 4), (0x04, 8), (0x10, 2), (0x08, 8), (0x20, 2)):
            if mask & bit:
                self.take(n)
        return found

    def diagnostic_info(self, depth: int = 0) -> None:
        mask = self.byte()
        for bit in (0x01, 0x02, 0x04, 0x08):
            if mask & bit:
                self.take(4)
        if mask & 0x10:
            self.bytestring()
        if mask & 0x20:
            self.take(4)
        if mask & 0x40:
            if depth >= _MAX_DEPTH:
                raise _Short
            self.diagnostic_info(depth + 1)

    def localized_text(self) -> str:
        mask = self.byte()
        if mask & 0x01:
            self.bytestring()
        return self.string() if mask & 0x02 else ""

    def count(self) -> int:
        n = self.i32()
        return max(n, 0)


def _response_header(r: _Reader) -> None:
    r.take(16)                # timestamp, request handle, service result
    r.diagnostic_info()
    for _ in range(r.count()):  # string table
        r.bytestring()
    r.node_id()               # additional header: ExtensionObject
    enc = r.byte()
    if enc in (1, 2):
        r.bytestring()


def _build_info(type_id: int | None, body: bytes | None) -> list[tuple[str, str | bytes]]:
    """BuildInfo's strings from a read ServerStatus (or BuildInfo) value: manufacturer,
    product name, software version, build number."""
    if body is None or type_id not in (SERVER_STATUS_BINARY, BUILD_INFO_BINARY):
        return []
    r = _Reader(body, 20 if type_id == SERVER_STATUS_BINARY else 0)  # after start/current time, state
    out: list[tuple[str, str | bytes]] = []
    try:
        for attr in _BUILD_INFO:
            value = r.string()
            if attr:
                out.append((attr, value))
    except _Short:
        pass
    return out


def _endpoint(r: _Reader) -> list[tuple[str, str | bytes]]:
    out: list[tuple[str, str | bytes]] = []
    r.string()                                   # endpoint URL
    out.append(("application_uri", r.string()))
    out.append(("product_uri", r.string()))
    out.append(("application_name", r.localized_text()))
    r.take(4)                                    # application type
    r.bytestring()                               # gateway server URI
    r.bytestring()                               # discovery profile URI
    for _ in range(r.count()):                   # discovery URLs
        r.bytestring()
    cert = r.bytestring()
    r.take(4)                                    # security mode
    r.bytestring()                               # security policy URI
    for _ in range(r.count()):                   # user identity token policies
        r.bytestring()
        r.take(4)
        r.bytestring()
        r.bytestring()
        r.bytestring()
    r.bytestring()                               # transport profile URI
    r.take(1)                                    # security level
    if cert:
        out.append(("certificate", cert))
    return out


def parse_message(msg: bytes, state: dict) -> list[tuple[str, str]]:
    """(attribute, value) pairs of one whole final MSG chunk holding a GetEndpoints,
    CreateSession or Read response; distinct values, in order of first appearance."""
    if len(msg) < 28 or msg[:4] != b"MSGF":
        return []
    r = _Reader(msg, 24)
    found: list[tuple[str, str | bytes]] = []
    try:
        enc = r.byte()
        if enc != 0x01 or r.byte() != 0:
            return []
        code = struct.unpack("<H", r.take(2))[0]
        if code not in (GET_ENDPOINTS_RESPONSE, CREATE_SESSION_RESPONSE, READ_RESPONSE):
            return []
        _response_header(r)
        if code == READ_RESPONSE:
            for _ in range(min(r.count(), _MAX_ENDPOINTS)):
                found += _build_info(*r.data_value())
            return _values(found, state)
        if code == CREATE_SESSION_RESPONSE:
            r.node_id()        # session id
            r.node_id()        # authentication token
            r.take(8)          # revised session timeout
            r.bytestring()     # server nonce
            cert = r.bytestring()
            if cert:
                found.append(("certificate", cert))
        for _ in range(min(r.count(), _MAX_ENDPOINTS)):
            found += _endpoint(r)
    except _Short:
        pass  # keep what was read whole before the cut
    return _values(found, state)


def _values(found: list[tuple[str, str | bytes]], state: dict) -> list[tuple[str, str]]:
    """Distinct (attribute, text) pairs in order; a certificate as its subject."""
    out: list[tuple[str, str]] = []
    for attr, value in found:
        if isinstance(value, bytes):
            attr, value = "opcua_certificate", cert_cached(value, state)[0] or ""
        text = clean(value.encode("utf-8"))
        if text and (attr, text) not in out:
            out.append((attr, text))
    return out


def candidates(ops: pl.DataFrame) -> pl.Series:
    return ops.filter((pl.col("app") == APP_OPCUA) & (pl.col("direction") == DIR_RESPONSE) & pl.col("code").is_in(
        [GET_ENDPOINTS_RESPONSE, CREATE_SESSION_RESPONSE, READ_RESPONSE]))["row"].unique()


def _messages(payload: bytes) -> tuple[list[bytes], bytes, int]:
    """The whole messages of a segment, and a cut last one with its announced size."""
    whole = []
    off = 0
    while off + 8 <= len(payload):
        size = struct.unpack_from("<I", payload, off + 4)[0]
        if size < 8 or size > _MAX_MESSAGE:
            break
        if off + size > len(payload):
            return whole, payload[off:], size
        whole.append(payload[off : off + size])
        off += size
    return whole, b"", 0


def _flow_rows(view: PacketView, key: tuple[int, ...]) -> np.ndarray:
    return np.flatnonzero((view.src_hi == key[0]) & (view.src_lo == key[1]) & (view.sport == key[2])
                          & (view.dst_hi == key[3]) & (view.dst_lo == key[4]) & (view.dport == key[5])
                          & (view.pay_len > 0))


def _advance(view: PacketView, key: tuple[int, ...], pending: dict, state: dict, upto: int,
             out: list[tuple[int, tuple]]) -> None:
    """Append the flow's segments after the held bytes (rows before `upto`) to a held message;
    report it on the segment completing it."""
    p = pending[key]
    for r in _flow_rows(view, key).tolist():
        if r <= p["after"]:
            continue
        if r >= upto:
            p["after"] = r - 1
            return
        seq = int(view.seq[r])
        if seq != p["next"]:
            if (seq - p["next"]) & 0xFFFFFFFF < 0x80000000:
                pending.pop(key)  # bytes were lost
                return
            continue  # a retransmission
        p["buf"] += view.payload(r)
        p["next"] = (seq + int(view.pay_len[r])) & 0xFFFFFFFF
        if len(p["buf"]) >= p["size"]:
            out += [(r, ("", a, v, SOURCE)) for a, v in parse_message(bytes(p["buf"][: p["size"]]), state)]
            pending.pop(key)
            return
    p["after"] = -1  # the next batch's rows all follow


def extract(view: PacketView, rows: list[int], state: dict) -> list[tuple[int, tuple]]:
    out: list[tuple[int, tuple]] = []
    pending: dict = state.setdefault("pending", {})
    for r in rows:
        key = flow_key(view, r)
        if key in pending:
            _advance(view, key, pending, state, r, out)
        whole, cut, size = _messages(view.payload(r))
        for msg in whole:
            out += [(r, ("", a, v, SOURCE)) for a, v in parse_message(msg, state)]
        if cut:
            if key not in pending and len(pending) >= _MAX_PENDING:
                pending.pop(next(iter(pending)))
            pending[key] = {"buf": bytearray(cut), "size": size,
                            "next": (int(view.seq[r]) + int(view.pay_len[r])) & 0xFFFFFFFF, "after": r}
    for key in list(pending):
        _advance(view, key, pending, state, len(view.ts), out)
    return out
