"""PROFINET on Ethernet (ethertype 0x8892): DCP decoded, RT frames only labelled.

Every frame gets `pn_frame_id`. FrameIDs 0xFEFC-0xFEFF are DCP (hello, get/set, identify request,
identify response): header ServiceID, ServiceType, Xid, ResponseDelay, DCPDataLength, then blocks
(Option, Suboption, BlockLength, [BlockInfo / BlockQualifier], value, padded to even length).
A DCP frame gives one op: code = ServiceID << 8 | ServiceType (3 Get, 4 Set, 5 Identify,
6 Hello; type 0 request, bit 0 response), sub = Option << 8 | Suboption of its first block that is
not a transaction start/end (0x0102 IP, 0x0202 name of station, 0x0505/0x0506 factory reset ...),
ref = Xid, service = the name of station it carries. The identity a device announces (name of
station, vendor and device id, IP) goes to pn_station, pn_vendor_id, pn_device_id, pn_ip for the
inventory. Cyclic RT data and alarms are not decoded: they count as packets of the pair.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import (
    APP_PROFINET,
    DIR_OTHER,
    DIR_REQUEST,
    DIR_RESPONSE,
    PACKETS,
)
from plantwatch.core.decode.view import AppResult, PacketView, gather_be16

ETHERTYPE = 0x8892
DCP_FIRST, DCP_LAST = 0xFEFC, 0xFEFF
_TRANSACTION = (0x0501, 0x0502)
_COLS = ["pn_station", "pn_vendor_id", "pn_device_id", "pn_ip"]


def select(view: PacketView, state: dict) -> np.ndarray:
    if view.ethertype is None or view.l3 is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero((view.ethertype == ETHERTYPE) & (view.l3 >= 0) & (view.l3 + 2 <= view.end))


def parse_dcp(buf: bytes) -> tuple[dict, dict] | None:
    """(op fields, packet fields) of one DCP PDU (from the FrameID); None when malformed."""
    if len(buf) < 12:
        return None
    sid, stype = buf[2], buf[3]
    xid = int.from_bytes(buf[4:8], "big")
    dlen = (buf[10] << 8) | buf[11]
    end = min(len(buf), 12 + dlen)
    op: dict = {"code": (sid << 8) | stype, "ref": xid,
                "direction": DIR_RESPONSE if stype & 1 else DIR_REQUEST}
    pkt: dict = {}
    # requests of Identify carry filter blocks (no BlockInfo); Set requests a BlockQualifier;
    # responses a BlockInfo: both 2 bytes before the value.
    prefixed = not (sid == 5 and not stype & 1)
    off = 12
    while off + 4 <= end:
        opt, subopt = buf[off], buf[off + 1]
        blen = (buf[off + 2] << 8) | buf[off + 3]
        vs, ve = off + 4, off + 4 + blen
        if ve > end:
            break
        key = (opt << 8) | subopt
        if "sub" not in op and key not in _TRANSACTION:
            op["sub"] = key
        val = buf[vs + 2 : ve] if prefixed and opt != 0xFF else buf[vs:ve]
        if key == 0x0202 and val:
            name = val.decode("latin-1")
            pkt["pn_station"] = op["service"] = name
        elif key == 0x0203 and len(val) >= 4:
            pkt["pn_vendor_id"] = (val[0] << 8) | val[1]
            pkt["pn_device_id"] = (val[2] << 8) | val[3]
        elif key == 0x0102 and len(val) >= 4:
            pkt["pn_ip"] = int.from_bytes(val[:4], "big")
        off = ve + (blen & 1)
    return op, pkt


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    assert view.l3 is not None
    rows = np.asarray(rows, dtype=np.int64)
    l3 = view.l3[rows]
    fid, _ = gather_be16(view.data, l3, view.end[rows])
    dcp = (fid >= DCP_FIRST) & (fid <= DCP_LAST)
    ops: list[dict] = []
    recs: list[dict] = []
    for i in np.flatnonzero(dcp).tolist():
        r = int(rows[i])
        res = parse_dcp(view.data[int(l3[i]) : int(view.end[r])].tobytes())
        if res is None:
            continue
        op, pkt = res
        op.update(row=r, app=APP_PROFINET)
        op.setdefault("direction", DIR_OTHER)
        ops.append(op)
        if pkt:
            pkt["row"] = r
            recs.append(pkt)
    cols = pl.DataFrame({"row": rows, "app": np.full(rows.size, APP_PROFINET), "pn_frame_id": fid},
                        schema={"row": pl.Int64(), "app": pl.UInt8(), "pn_frame_id": PACKETS["pn_frame_id"]})
    if recs:
        ident = pl.DataFrame([{c: r.get(c) for c in ["row", *_COLS]} for r in recs],
                             schema={"row": pl.Int64(), **{c: PACKETS[c] for c in _COLS}}, orient="row")
        cols = cols.join(ident, on="row", how="left")
    return AppResult(columns=cols, ops=ics.ops_frame(None, ops))
