"""IEC 61850 / ISO 9506 MMS over ISO-on-TCP (TCP 102), told apart from S7comm on the same port.

After TPKT and a COTP data TPDU, S7comm carries its protocol id 0x32 (S7comm-plus 0x72); MMS
carries the ISO session layer (SPDU 0x01 data transfer, 0x0D connect, 0x0E accept ...), the
presentation layer (fully encoded user data, or the CP/CPA of an association with ACSE inside)
and then the MMS PDU, BER encoded. Some stacks put the MMS PDU straight after COTP; Wireshark's
heuristic accepts that and so do we. `select` keeps the TCP 102 rows whose first COTP DT carries
neither 0x32 nor 0x72, so S7 traffic never reaches the per-packet BER walk.

One op per MMS PDU. Keys (schema.OPS): sub = the MMS PDU choice (0 confirmed-Request,
1 confirmed-Response, 2 confirmed-Error, 3 unconfirmed, 4 reject, 5-7 cancel, 8-10 initiate,
11-13 conclude); code = the confirmed service (ConfirmedServiceRequest choice: 4 read, 5 write,
40 start, 41 stop, 44 kill ...) or, for sub 3, the unconfirmed service (0 informationReport);
trans = invokeID; domain / service = the object the service names: domain id and item id of a
domain-specific name, the identifier of a VMD-specific one (domain null), the program invocation
of start/stop/kill... (domain null), the domain of a download/upload or of getNameList (service
null), the first file name of file services.

The packet's `app` becomes mms when an ISO session SPDU or an MMS PDU is recognised; `cotp_type`
stays s7.py's (it decodes TPKT/COTP for the whole port).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.ber import children, integer, text, tlv, unsigned
from plantwatch.core.decode.schema import APP_MMS, DIR_OTHER, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import AppResult, PacketView, gather_u8, port_rows

PORT = 102
# MMS PDU choice numbers (their BER tags are context class, this number).
CONFIRMED_REQ, CONFIRMED_RESP, CONFIRMED_ERR, UNCONFIRMED, REJECT = 0, 1, 2, 3, 4
_DIRECTION = {0: DIR_REQUEST, 1: DIR_RESPONSE, 2: DIR_RESPONSE, 5: DIR_REQUEST, 6: DIR_RESPONSE,
              7: DIR_RESPONSE, 8: DIR_REQUEST, 9: DIR_RESPONSE, 10: DIR_RESPONSE, 11: DIR_REQUEST,
              12: DIR_RESPONSE, 13: DIR_RESPONSE}
_SESSION_SI = {0x01, 0x09, 0x0A, 0x0C, 0x0D, 0x0E, 0x19}  # DT/GT, FN, DN, RF, CN, AC, AB
_CTX = 0x80  # BER context class
_UNIVERSAL = 0x00

# How the object name sits in a confirmed request of each service (ISO 9506-2 ASN.1):
#   objname: the value is an ObjectName;  varspec: read ([1] VariableAccessSpecification);
#   vas: write (the VariableAccessSpecification first);  ctx0: [0] Identifier first;
#   prim: the value is the Identifier;  scope: getNameList's objectScope;  file0: [0] FileName;
#   file: the value is a FileName;  lists: deleteNamedVariableList;  first: the first ObjectName child;
#   name0: [0] holds the ObjectName (getVariableAccessAttributes, takeControl);
#   dom0 / domprim: as ctx0 / prim, the identifier being a domain name (download, upload ...).
_NAME_RULE = {
    1: "scope", 4: "varspec", 5: "vas", 6: "name0", 11: "first", 12: "objname", 13: "lists",
    19: "name0", 20: "name0", 26: "dom0", 27: "domprim", 28: "dom0", 29: "domprim", 32: "dom0",
    33: "dom0", 34: "dom0", 35: "dom0", 36: "domprim", 37: "domprim", 38: "ctx0", 39: "prim",
    40: "ctx0", 41: "ctx0", 42: "ctx0", 43: "ctx0", 44: "ctx0", 45: "prim", 46: "obtain",
    72: "file0", 75: "file0", 76: "file", 77: "file0",
}


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = port_rows(view, 6, {PORT})
    if rows.size == 0:
        return rows
    pos, plen, end = view.span(rows)
    d = view.data
    ver, ok = gather_u8(d, pos, end)
    li, _ = gather_u8(d, pos + 4, end)
    ctype, _ = gather_u8(d, pos + 5, end)
    first, has = gather_u8(d, pos + 5 + li, end)
    dt = ok & (ver == 3) & (plen >= 8) & ((ctype >> 4) == 0x0F) & (li >= 2)
    return rows[dt & has & (first != 0x32) & (first != 0x72)]


def _object_name(buf: bytes, cls: int, num: int, vs: int, ve: int, op: dict) -> bool:
    """An ObjectName choice: [0] vmd-specific, [1] domain-specific {domainId, itemId}, [2] aa."""
    if cls == _CTX and num in (0, 2):
        op["service"] = text(buf, vs, ve)
        return True
    if cls == _CTX | 0x20 and num == 1:
        ids = [text(buf, s, e) for c, n, s, e in children(buf, vs, ve) if c == _UNIVERSAL]
        if len(ids) == 2:
            op["domain"], op["service"] = ids
            return True
    return False


def _first_object_name(buf: bytes, vs: int, ve: int, op: dict) -> None:
    for c, n, s, e in children(buf, vs, ve):
        if _object_name(buf, c, n, s, e, op):
            return


def _var_access(buf: bytes, cls: int, num: int, vs: int, ve: int, op: dict) -> None:
    """VariableAccessSpecification: [0] listOfVariable (first variable's name) | [1] list name."""
    if num == 1:
        _first_object_name(buf, vs, ve, op)
        return
    if num == 0:
        for _c, _n, s, e in children(buf, vs, ve):          # SEQUENCE per variable
            for c2, n2, s2, e2 in children(buf, s, e):      # variableSpecification
                if n2 == 0 and c2 & 0x20:                    # name [0] ObjectName
                    _first_object_name(buf, s2, e2, op)
                return


def _file_name(buf: bytes, vs: int, ve: int, op: dict) -> None:
    for _c, _n, s, e in children(buf, vs, ve):
        op["service"] = text(buf, s, e)
        return


def _request_name(buf: bytes, service: int, cls: int, vs: int, ve: int, op: dict) -> None:
    rule = _NAME_RULE.get(service)
    if rule is None:
        return
    if rule in ("prim", "domprim"):
        if not cls & 0x20:
            op["domain" if rule == "domprim" else "service"] = text(buf, vs, ve)
        return
    if not cls & 0x20:
        return
    kids = list(children(buf, vs, ve))
    if rule == "objname" or rule == "first":
        _first_object_name(buf, vs, ve, op)
    elif rule == "varspec":
        for c, n, s, e in kids:
            if n == 1 and c & 0x20:
                for c2, n2, s2, e2 in children(buf, s, e):
                    _var_access(buf, c2, n2, s2, e2, op)
                    break
    elif rule == "name0":
        for c, n, s, e in kids:
            if n == 0 and c & 0x20:
                _first_object_name(buf, s, e, op)
    elif rule == "vas" and kids:
        c, n, s, e = kids[0]
        _var_access(buf, c, n, s, e, op)
    elif rule in ("ctx0", "dom0"):
        for c, n, s, e in kids:
            if c == _CTX and n == 0:
                op["domain" if rule == "dom0" else "service"] = text(buf, s, e)
    elif rule == "scope":
        for c, n, s, e in kids:
            if n == 1 and c & 0x20:
                for c2, n2, s2, e2 in children(buf, s, e):
                    if n2 == 1 and not c2 & 0x20:
                        op["domain"] = text(buf, s2, e2)
    elif rule == "lists":
        for c, n, s, e in kids:
            if n == 1 and c & 0x20:
                _first_object_name(buf, s, e, op)
            elif n == 2 and not c & 0x20 and "service" not in op:
                op["domain"] = text(buf, s, e)
    elif rule in ("file0", "obtain"):
        want = 0 if rule == "file0" else 1
        for c, n, s, e in kids:
            if n == want and c & 0x20:
                _file_name(buf, s, e, op)
    elif rule == "file":
        _file_name(buf, vs, ve, op)


def parse_pdu(buf: bytes, off: int, end: int) -> dict | None:
    """One MMS PDU at `off`; None when the bytes are not one."""
    cls, num, vs, ve = tlv(buf, off, end)
    if cls & 0xC0 != _CTX or num > 13:
        return None
    op: dict = {"app": APP_MMS, "sub": num, "direction": _DIRECTION.get(num, DIR_OTHER)}
    if num in (CONFIRMED_REQ, CONFIRMED_RESP):
        if not cls & 0x20:
            return None
        kids = list(children(buf, vs, ve))
        if not kids or kids[0][:2] != (_UNIVERSAL, 2):
            return None
        op["trans"] = unsigned(buf, kids[0][2], kids[0][3])
        for c, n, s, e in kids[1:]:
            if c & 0xC0 == _CTX:
                op["code"] = n
                if num == CONFIRMED_REQ:
                    _request_name(buf, n, c, s, e, op)
                break
    elif num == CONFIRMED_ERR:
        for c, n, s, e in children(buf, vs, ve):
            if c == _CTX and n == 0:
                op["trans"] = unsigned(buf, s, e)
    elif num == UNCONFIRMED:
        for c, n, s, e in children(buf, vs, ve):
            op["code"] = n
            if n == 0 and c & 0x20:  # informationReport: the VariableAccessSpecification first
                for c2, n2, s2, e2 in children(buf, s, e):
                    _var_access(buf, c2, n2, s2, e2, op)
                    break
            break
    elif num in (5, 6) and not cls & 0x20:  # cancel request/response: the invokeID itself
        op["trans"] = integer(buf, vs, ve)
    return op


def _presentation_dt(buf: bytes, off: int, end: int) -> int | None:
    """Offset of the MMS PDU in presentation fully-encoded user data (61 { 30 { 02 ctx, a0 } })."""
    cls, num, vs, ve = tlv(buf, off, end)
    if (cls, num) != (0x40 | 0x20, 1):
        return None
    for c, n, s, e in children(buf, vs, ve):
        if (c, n) == (0x20, 16):  # PDV-list
            for c2, n2, s2, _e2 in children(buf, s, e):
                if (c2, n2) == (_CTX | 0x20, 0):  # single-ASN1-type
                    return s2
    return None


def _descend(buf: bytes, vs: int, ve: int, path: tuple[tuple[int, int], ...]) -> int | None:
    """Value start of the element reached by following (class|constructed, number) steps."""
    for want in path:
        for c, n, s, e in children(buf, vs, ve):
            if (c, n) == want:
                vs, ve = s, e
                break
        else:
            return None
    return vs


# CP/CPA-type -> normal-mode parameters [2] -> user data (61) -> PDV-list -> [0] -> AARQ/AARE
# (application 0/1) -> user-information [30] -> EXTERNAL -> [0] single-ASN1-type -> MMS.
_CP_TO_PDV = ((_CTX | 0x20, 2), (0x60, 1), (0x20, 16), (_CTX | 0x20, 0))
_ACSE_TO_MMS = ((_CTX | 0x20, 30), (0x20, 8), (_CTX | 0x20, 0))


def _presentation_cp(buf: bytes, off: int, end: int) -> int | None:
    cls, num, vs, ve = tlv(buf, off, end)
    if (cls, num) != (0x20, 17):  # CP-type / CPA-PPDU: a SET
        return None
    acse = _descend(buf, vs, ve, _CP_TO_PDV)
    if acse is None:
        return None
    c, n, s, e = tlv(buf, acse, ve)
    if c != 0x60 or n not in (0, 1):  # AARQ, AARE
        return None
    return _descend(buf, s, e, _ACSE_TO_MMS)


def _session(buf: bytes, off: int, end: int) -> tuple[bool, int | None]:
    """(is an ISO session SPDU, offset of the MMS PDU inside or None)."""
    si = buf[off]
    if si not in _SESSION_SI or off + 2 > end:
        return False, None
    li = buf[off + 1]
    p = off + 2
    if li == 0xFF:
        if off + 4 > end:
            return False, None
        li = (buf[off + 2] << 8) | buf[off + 3]
        p = off + 4
    if p + li > end:
        return False, None
    if si == 0x01 and li == 0 and p + 2 <= end and buf[p] == 0x01:
        # give tokens + data transfer, then the presentation PPDU
        li2 = buf[p + 1]
        q = p + 2 + li2
        return True, (_presentation_dt(buf, q, end) if q < end else None)
    if si in (0x0D, 0x0E):
        q = p
        while q + 2 <= p + li:  # parameters: look for session user data (PGI 0xC1)
            code, plen = buf[q], buf[q + 1]
            q += 2
            if plen == 0xFF:
                plen = (buf[q] << 8) | buf[q + 1]
                q += 2
            if code == 0xC1:
                return True, _presentation_cp(buf, q, min(q + plen, end))
            q += plen
        return True, None
    return True, None


def walk(payload: bytes) -> tuple[bool, list[dict]]:
    """(an ISO/MMS stack was recognised, the MMS ops) of the TPKTs of one segment."""
    seen = False
    ops: list[dict] = []
    off, n = 0, len(payload)
    while off + 7 <= n and payload[off] == 3:
        tlen = (payload[off + 2] << 8) | payload[off + 3]
        if tlen < 7 or off + tlen > n:
            break
        li = payload[off + 4]
        end = off + tlen
        ud = off + 5 + li
        if payload[off + 5] >> 4 == 0x0F and li >= 2 and ud < end:
            try:
                first = payload[ud]
                if first in (0x32, 0x72):
                    pass
                elif first & 0xC0 == _CTX:
                    op = parse_pdu(payload, ud, end)
                    if op is not None:
                        seen = True
                        ops.append(op)
                else:
                    is_session, mpos = _session(payload, ud, end)
                    seen |= is_session
                    if mpos is not None:
                        op = parse_pdu(payload, mpos, end)
                        if op is not None:
                            ops.append(op)
            except (ValueError, IndexError):
                pass  # a malformed PDU: the packet keeps what was recognised before it
        off = end
    return seen, ops


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    ops: list[dict] = []
    app_rows: list[int] = []
    for r in rows.tolist():
        seen, found = walk(view.payload(r))
        if seen:
            app_rows.append(r)
        for op in found:
            op["row"] = r
            ops.append(op)
    cols = pl.DataFrame({"row": app_rows, "app": [APP_MMS] * len(app_rows)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ics.ops_frame(None, ops))
