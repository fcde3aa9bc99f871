"""IEC 60870-5-104 (TCP 2404): APCI (I/S/U), and for I-format the ASDU header.

Fully vectorised, including several APDUs per segment (common): the APDUs of all segments are
walked together, one APDU per segment per numpy step. An APDU cut across TCP segments arrives
whole on the segment completing it (core/decode/reassembly.py), as tshark reports it.

Ops: one per I-format APDU (group 0, code = type id, sub = cause of transmission, unit = common
address, ref = first IOA, trans = N(S)) and one per U-format APDU (group 3, sub = U function:
0x01 STARTDT act ... 0x20 TESTFR con). S-format (acknowledgement only) gives no op.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import APP_IEC104, DIR_OTHER, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import AppResult, PacketView, gather_le16, gather_u8, port_rows

PORT = 2404
_MAX_APDUS = 512  # per segment; a bound on the walk, far above what TCP segments hold


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = port_rows(view, 6, {PORT})
    if rows.size == 0:
        return rows
    pos = view.pay[rows]
    b, ok = gather_u8(view.data, pos, pos + view.pay_len[rows])
    return rows[ok & (b == 0x68) & (view.pay_len[rows] >= 6)]


def apdus(view: PacketView, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, start, length byte) of every complete APDU in the rows' payloads, in order."""
    d = view.data
    pos = view.pay[rows].copy()
    end = pos + view.pay_len[rows]
    idx = np.arange(rows.size)
    out_i, out_p, out_l = [], [], []
    for _ in range(_MAX_APDUS):
        if idx.size == 0:
            break
        p, e = pos[idx], end[idx]
        start, ok = gather_u8(d, p, e)
        ln, _ = gather_u8(d, p + 1, e)
        good = ok & (start == 0x68) & (ln >= 4) & (p + 2 + ln <= e)
        out_i.append(idx[good])
        out_p.append(p[good])
        out_l.append(ln[good])
        pos[idx] = p + 2 + ln
        idx = idx[good & (p + 2 + ln < e)]
    if not out_i:
        z = np.zeros(0, np.int64)
        return z, z, z
    i = np.concatenate(out_i)
    p = np.concatenate(out_p)
    ln = np.concatenate(out_l)
    order = np.lexsort((p, i))
    return rows[i[order]], p[order], ln[order]


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    d = view.data
    r, p, ln = apdus(view, rows)
    seen = np.unique(r)
    e = p + 2 + ln
    c1, _ = gather_u8(d, p + 2, e)
    c2, _ = gather_u8(d, p + 3, e)
    is_i = (c1 & 1) == 0
    is_u = (c1 & 3) == 3
    keep = is_i | is_u
    r, p, e, ln, c1, c2, is_i, is_u = (x[keep] for x in (r, p, e, ln, c1, c2, is_i, is_u))
    a = p + 6  # ASDU
    has_asdu = is_i & (ln >= 4 + 6)
    typeid, _ = gather_u8(d, a, e)
    cot_b, _ = gather_u8(d, a + 2, e)
    cot = cot_b & 0x3F
    ca, _ = gather_le16(d, a + 4, e)
    ioa_lo, ioa_ok = gather_le16(d, a + 6, e)
    ioa_hi, ioa_ok2 = gather_u8(d, a + 8, e)
    utype = c1 >> 2
    u_dir = np.where(np.isin(utype, (1, 4, 16)), DIR_REQUEST, DIR_RESPONSE)
    i_dir = np.where(np.isin(cot, (5, 6, 8)), DIR_REQUEST,
                     np.where(np.isin(cot, (7, 9, 10, 44, 45, 46, 47)), DIR_RESPONSE, DIR_OTHER))
    n = r.size
    fast = {
        "row": r, "app": np.full(n, APP_IEC104),
        "direction": np.where(is_u, u_dir, i_dir),
        "group": np.where(is_u, 3, 0),
        "code": (typeid, has_asdu),
        "sub": (np.where(is_u, utype, cot), is_u | has_asdu),
        "unit": (ca, has_asdu),
        "ref": (ioa_lo | (ioa_hi << 16), has_asdu & ioa_ok & ioa_ok2),
        "trans": ((c1 | (c2 << 8)) >> 1, is_i),
    }
    ops = ics.ops_frame(fast if n else None)
    cols = pl.DataFrame({"row": seen, "app": np.full(seen.size, APP_IEC104)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ops)
