"""S7comm over TPKT/COTP (TCP 102), and recognition of S7comm-plus.

Every packet gets `cotp_type` (the COTP PDU type of its first TPKT: 0x0E CR, 0x0D CC, 0x08 DR,
0x0F DT ...). Ops are emitted for S7 PDUs only (one per TPKT carrying one).

Vectorised: one TPKT filling the segment with a COTP DT and an S7 Job/Ack/Ack_Data of Setup
Communication, Read Var or Write Var (the polling loop). Walked per packet: several TPKTs in one
segment, userdata (SZL...), PI service, PLC stop, block up/download, S7comm-plus.

A TPKT cut across TCP segments arrives whole on the segment completing it (reassembly.py). MMS
on the same port is decoded by mms.py, whose `app` label replaces this module's on its packets.
Not reassembled (tshark does both): an S7 PDU split over several COTP DT fragments is reported on
the first fragment, whose bytes carry the S7 header; a userdata answer split into data units
(last-data-unit = no) is reported on its first unit, and the later units of that answer get no
SZL id (module state remembers the open data-unit references per flow).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_S7, APP_S7PLUS, DIR_OTHER, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import AppResult, PacketView, gather_be16, gather_u8, port_rows

PORT = 102
BLOCK_TYPES = {"08": "OB", "0A": "DB", "0B": "SDB", "0C": "FC", "0D": "SFC", "0E": "FB",
               "0F": "SFB"}
_MAX_OPEN_FRAGMENTS = 4096
# the parameter head of a userdata mode-transition push (tshark s7comm.param.userdata.head
# 0x010010; other userdata carry 0x000112)
MODE_TRANSITION_HEAD = b"\x01\x00\x10"
S7_MODE_TRANSITION = ics.S7_MODE_TRANSITION


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = port_rows(view, 6, {PORT})
    if rows.size == 0:
        return rows
    pos, _, end = view.span(rows)
    ver, ok = gather_u8(view.data, pos, end)
    return rows[ok & (ver == 3) & (view.pay_len[rows] >= 6)]


def _text(b: bytes) -> str:
    return b.decode("latin-1")


def _filename(op: dict, name: bytes) -> None:
    """'_0800001P': block type (2 hex chars), number (5 digits), file system."""
    if len(name) >= 8 and name[:1] == b"_":
        t = _text(name[1:3]).upper()
        op["block_type"] = BLOCK_TYPES.get(t, t)
        if name[3:8].isdigit():
            op["block_num"] = int(name[3:8])


def _read_var(op: dict, par: bytes, job: bool) -> None:
    if len(par) >= 2:
        op["count"] = par[1]
    # first item, S7ANY syntax: 12 0A 10 tsize len16 db16 area addr24
    if job and len(par) >= 14 and par[2] == 0x12 and par[4] == 0x10:
        op["db"] = (par[8] << 8) | par[9]
        op["area"] = par[10]
        op["ref"] = (par[11] << 16) | (par[12] << 8) | par[13]


def _userdata(op: dict, par: bytes, data: bytes, key: tuple, state: dict) -> None:
    if len(par) < 8 or par[:3] not in (b"\x00\x01\x12", MODE_TRANSITION_HEAD):
        return
    tg = par[5]
    # Type: the top two bits (Wireshark 4.0 shows the nibble: 4 request, 8 response, 0 push).
    kind = tg >> 6
    group = tg & 0x0F
    sub = par[6]
    if group == 0 and kind == 0:
        # mode-transition push: the CPU announcing its new mode (subfunction: 0 STOP, 2 RUN...),
        # unsolicited, with method Req (0x11): a request the PLC sends, keyed apart from functions
        op["direction"] = DIR_REQUEST
        op["group"], op["sub"] = S7_MODE_TRANSITION, sub
        op["code"] = (S7_MODE_TRANSITION << 8) | sub
        return
    if par[:3] != b"\x00\x01\x12":
        return
    op["direction"] = {1: DIR_REQUEST, 2: DIR_RESPONSE}.get(kind, DIR_OTHER)
    op["group"], op["sub"] = group, sub
    op["code"] = (group << 8) | sub
    continuation = False
    if par[3] >= 8 and len(par) >= 12:
        dur, last = par[8], par[9]
        fkey = (*key, dur)
        open_frags: set = state.setdefault("ud_open", set())
        continuation = fkey in open_frags
        if last != 0 and dur != 0:
            if len(open_frags) >= _MAX_OPEN_FRAGMENTS:
                open_frags.clear()
            open_frags.add(fkey)
        else:
            open_frags.discard(fkey)
        if (par[10] << 8) | par[11]:
            op["exception"] = (par[10] << 8) | par[11]
    if group == 2 and sub in (1, 5) and not continuation and len(data) >= 6 and data[0] == 0xFF:
        op["count"] = (data[4] << 8) | data[5]  # cyclic (change-driven) transfer: item count
    if group == 4 and sub == 1 and not continuation and len(data) >= 6 and data[0] == 0xFF:
        length = (data[2] << 8) | data[3]
        if length >= 2:
            op["szl_id"] = (data[4] << 8) | data[5]


def parse_s7(pdu: bytes, key: tuple, state: dict) -> dict | None:
    """One S7comm PDU (from the 0x32 byte); None when it is not one."""
    if len(pdu) < 10 or pdu[0] != 0x32:
        return None
    rosctr = pdu[1]
    if rosctr not in (1, 2, 3, 7):
        return None
    hlen = 12 if rosctr in (2, 3) else 10
    if len(pdu) < hlen:
        return None
    parlen = (pdu[6] << 8) | pdu[7]
    datlen = (pdu[8] << 8) | pdu[9]
    op: dict = {"app": APP_S7, "trans": (pdu[4] << 8) | pdu[5],
                "direction": DIR_REQUEST if rosctr == 1 else DIR_RESPONSE}
    if hlen == 12 and (pdu[10] or pdu[11]):
        op["exception"] = (pdu[10] << 8) | pdu[11]
    par = pdu[hlen : hlen + parlen]
    data = pdu[hlen + parlen : hlen + parlen + datlen]
    if rosctr == 7:
        _userdata(op, par, data, key, state)
        return op
    if not par:
        return op  # an Ack without parameter
    func = par[0]
    op["code"] = func
    if func in (0x04, 0x05):
        _read_var(op, par, rosctr == 1)
    elif func in (0x28, 0x29) and rosctr == 1:
        # 0x28: 7 unknown bytes, param block len16, block, name len, name; 0x29: 5 bytes, len, name
        if func == 0x28 and len(par) >= 10:
            blen = (par[8] << 8) | par[9]
            block = par[10 : 10 + blen]
            npos = 10 + blen
        else:
            block, npos = b"", 6
        if npos < len(par):
            n = par[npos]
            name = par[npos + 1 : npos + 1 + n]
            if len(name) == n:
                op["service"] = _text(name)
        if func == 0x28 and len(block) >= 9 and op.get("service") in ("_DELE", "_INSE", "_INS2"):
            # block list: count(1) unknown(1) then "TTNNNNN" + file system per block
            t = _text(block[2:4]).upper()
            op["block_type"] = BLOCK_TYPES.get(t, t)
            if block[4:9].isdigit():
                op["block_num"] = int(block[4:9])
    elif 0x1A <= func <= 0x1F and rosctr == 1 and len(par) >= 9:
        n = par[8]
        name = par[9 : 9 + n]
        if len(name) == n:
            _filename(op, name)
    return op


def parse_s7plus(pdu: bytes) -> dict | None:
    """S7comm-plus: 72 ver len16, then (V1/V2) opcode, 2 reserved, function16."""
    if len(pdu) < 4 or pdu[0] != 0x72:
        return None
    op: dict = {"app": APP_S7PLUS, "direction": DIR_OTHER}
    if len(pdu) >= 10 and pdu[4] in (0x31, 0x32, 0x33):
        opcode = pdu[4]
        op["sub"] = opcode
        op["direction"] = {0x31: DIR_REQUEST, 0x32: DIR_RESPONSE}.get(opcode, DIR_OTHER)
        op["code"] = (pdu[7] << 8) | pdu[8]
    return op


def walk(payload: bytes, key: tuple, state: dict) -> tuple[int | None, int, list[dict]]:
    """(first COTP type, app, ops) of the TPKTs of one segment."""
    first_type = None
    app = APP_S7
    ops: list[dict] = []
    off = 0
    n = len(payload)
    while off + 6 <= n and payload[off] == 3:
        tlen = (payload[off + 2] << 8) | payload[off + 3]
        if tlen < 7:
            break
        li = payload[off + 4]
        ctype = payload[off + 5] >> 4
        if first_type is None:
            first_type = ctype
        if off + tlen > n:
            break  # cut: reassembly.py holds it for the segment completing it
        if ctype == 0x0F and li >= 2:
            pdu = payload[off + 5 + li : off + tlen]
            if pdu[:1] == b"\x72":
                app = APP_S7PLUS
                op = parse_s7plus(pdu)
            else:
                op = parse_s7(pdu, key, state)
            if op is not None:
                ops.append(op)
        off += tlen
    return first_type, app, ops


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    d = view.data
    pos, plen, end = view.span(rows)
    tlen, _ = gather_be16(d, pos + 2, end)
    li, _ = gather_u8(d, pos + 4, end)
    ctype = gather_u8(d, pos + 5, end)[0] >> 4
    eot, _ = gather_u8(d, pos + 6, end)
    s7 = pos + 7
    pid, _ = gather_u8(d, s7, end)
    rosctr, _ = gather_u8(d, s7 + 1, end)
    hlen = np.where((rosctr == 2) | (rosctr == 3), 12, 10)
    parlen, _ = gather_be16(d, s7 + 6, end)
    datlen, _ = gather_be16(d, s7 + 8, end)
    func, _ = gather_u8(d, s7 + hlen, end)
    single = tlen == plen
    dt = (ctype == 0x0F) & (li == 2) & ((eot & 0x80) != 0)
    s7_ok = (pid == 0x32) & (7 + hlen + parlen + datlen == plen)
    fast_s7 = single & dt & s7_ok & (
        ((rosctr == 1) | (rosctr == 3)) & np.isin(func, (0x04, 0x05, 0xF0)) & (parlen >= 1)
        | (rosctr == 2) & (parlen == 0))
    cotp_only = single & (ctype != 0x0F) & (plen >= 7)
    fast = fast_s7 | cotp_only
    # vectorised S7 header + first Read/Write Var item
    f = np.flatnonzero(fast_s7)
    fp, fe, fr = s7[f], end[f], rosctr[f]
    par = fp + hlen[f]
    fparlen = parlen[f]
    trans, _ = gather_be16(d, fp + 4, fe)
    errc, _ = gather_be16(d, fp + 10, fe)
    code = func[f]
    rw = np.isin(code, (0x04, 0x05)) & (fr != 2)
    count, cnt_ok = gather_u8(d, par + 1, fe)
    syn, _ = gather_u8(d, par + 2, fe)
    anysyn, _ = gather_u8(d, par + 4, fe)
    item = rw & (fr == 1) & (fparlen >= 14) & (syn == 0x12) & (anysyn == 0x10)
    db, _ = gather_be16(d, par + 8, fe)
    area, _ = gather_u8(d, par + 10, fe)
    a_hi, _ = gather_u8(d, par + 11, fe)
    a_lo, _ = gather_be16(d, par + 12, fe)
    fast_cols = {
        "row": rows[f], "app": np.full(f.size, APP_S7),
        "direction": np.where(fr == 1, DIR_REQUEST, DIR_RESPONSE),
        "code": (code, fr != 2), "trans": trans,
        "exception": (errc, (fr != 1) & (errc != 0)),
        "count": (count, rw & cnt_ok & (fparlen >= 2)),
        "db": (db, item), "area": (area, item), "ref": ((a_hi << 16) | a_lo, item),
    }
    # per packet: everything else
    slow_ops: list[dict] = []
    slow_rows: list[int] = []
    slow_types: list[int | None] = []
    slow_apps: list[int] = []
    for i in np.flatnonzero(~fast):
        r = int(rows[i])
        key = (int(view.src_hi[r]), int(view.src_lo[r]), int(view.dst_hi[r]), int(view.dst_lo[r]),
               int(view.sport[r]), int(view.dport[r]))
        try:
            first_type, app, ops = walk(view.payload(r), key, state)
        except (IndexError, ValueError):  # defensive: a malformed packet is skipped
            continue
        if first_type is None:
            continue
        slow_rows.append(r)
        slow_types.append(first_type)
        slow_apps.append(app)
        for op in ops:
            op["row"] = r
            slow_ops.append(op)
    ops_df = ics.ops_frame(fast_cols, slow_ops)
    fr_all = np.flatnonzero(fast)
    cols = pl.concat([
        pl.DataFrame({"row": rows[fr_all], "app": np.full(fr_all.size, APP_S7),
                      "cotp_type": ctype[fr_all]},
                     schema={"row": pl.Int64(), "app": pl.UInt8(), "cotp_type": pl.Int16()}),
        pl.DataFrame({"row": slow_rows, "app": slow_apps, "cotp_type": slow_types},
                     schema={"row": pl.Int64(), "app": pl.UInt8(), "cotp_type": pl.Int16()}),
    ]).sort("row")
    return AppResult(columns=cols, ops=ops_df)
