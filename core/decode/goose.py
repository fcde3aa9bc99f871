"""IEC 61850 GOOSE (ethertype 0x88B8, VLAN-tagged or not).

Header: APPID, Length (from APPID, bounds the PDU), Reserved1 (simulation bit in Ed.2), Reserved2;
then the goosePdu, BER: [0] gocbRef, [1] timeAllowedtoLive, [2] datSet, [3] goID, [4] t,
[5] stNum, [6] sqNum, [7] simulation (test in Ed.1), [8] confRev, [9] ndsCom ...

Per packet: goose_appid, goose_gocb, goose_dataset, goose_id, goose_stnum, goose_sqnum,
goose_simulation, goose_confrev. One op per PDU, keyed by what it means for its control block's
sequence (module state remembers, per (APPID, gocbRef), the last stNum and sqNum of the block
and of each publisher MAC, bounded): a publication, a state change (stNum went up), the sequence
going backwards (an old stNum/sqNum again: a replay) or a stNum jump from a new publisher MAC;
the last two are ACTION-class (core/decode/ics_61850.py). The op's ref is stNum, service gocbRef,
unit APPID.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.ber import children, text, tlv, unsigned
from plantwatch.core.decode.ics_61850 import (
    GOOSE_NEW_PUBLISHER,
    GOOSE_PUBLISH,
    GOOSE_SEQ_BACK,
    GOOSE_STATE_CHANGE,
)
from plantwatch.core.decode.schema import APP_GOOSE, DIR_OTHER, PACKETS
from plantwatch.core.decode.view import AppResult, PacketView

ETHERTYPE = 0x88B8
_MAX_STREAMS = 65536
_MAX_MACS = 16  # publishers remembered per control block
_FIELDS = {0: "goose_gocb", 2: "goose_dataset", 3: "goose_id", 5: "goose_stnum",
           6: "goose_sqnum", 7: "goose_simulation", 8: "goose_confrev"}
_COLS = ["row", "app", "goose_appid", *_FIELDS.values()]


def select(view: PacketView, state: dict) -> np.ndarray:
    if view.ethertype is None or view.l3 is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero((view.ethertype == ETHERTYPE) & (view.l3 >= 0) & (view.l3 + 10 <= view.end))


def parse(buf: bytes) -> dict | None:
    """The header and goosePdu fields of one GOOSE frame (from APPID); None when it is not one."""
    if len(buf) < 10:
        return None
    length = (buf[2] << 8) | buf[3]
    end = min(len(buf), length) if length >= 8 else len(buf)
    cls, num, vs, ve = tlv(buf, 8, end)
    if (cls, num) != (0x60, 1):  # goosePdu [APPLICATION 1]
        return None
    out: dict = {"goose_appid": (buf[0] << 8) | buf[1]}
    for c, n, s, e in children(buf, vs, ve):
        col = _FIELDS.get(n)
        if c != 0x80 or col is None:
            continue
        if n in (0, 2, 3):
            out[col] = text(buf, s, e)
        elif n == 7:
            out[col] = e > s and buf[s] != 0
        else:
            out[col] = unsigned(buf, s, e)
    return out


def _sequence(state: dict, key: tuple, mac: int, st: int | None, sq: int | None) -> int:
    """What this PDU means for its control block, and remember it.

    A publisher already seen for the block is judged against its own last (stNum, sqNum): going
    back is a restart or a replay of its frames. A MAC new to the block is judged against the
    block's last frame: older is a replay, another stNum a takeover; the same stNum going on is a
    redundant publisher taking over quietly (a publication)."""
    streams: dict = state.setdefault("streams", {})
    if st is None or sq is None:
        return GOOSE_PUBLISH
    block = streams.get(key)
    if block is None:
        if len(streams) >= _MAX_STREAMS:
            streams.clear()
        streams[key] = {"last": (st, sq), "macs": {mac: (st, sq)}}
        return GOOSE_PUBLISH
    macs: dict = block["macs"]
    own = macs.get(mac)
    if own is not None:
        code = (GOOSE_SEQ_BACK if (st, sq) < own else
                GOOSE_STATE_CHANGE if st > own[0] else GOOSE_PUBLISH)
    else:
        lst = block["last"]
        code = (GOOSE_SEQ_BACK if (st, sq) < lst else
                GOOSE_NEW_PUBLISHER if st != lst[0] else GOOSE_PUBLISH)
        if len(macs) >= _MAX_MACS:
            macs.clear()
    macs[mac] = (st, sq)
    if own is not None or code == GOOSE_PUBLISH:
        block["last"] = (st, sq)
    return code


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    assert view.l3 is not None and view.eth_src is not None
    recs: list[dict] = []
    ops: list[dict] = []
    for r in np.asarray(rows, dtype=np.int64).tolist():
        buf = view.data[int(view.l3[r]) : int(view.end[r])].tobytes()
        try:
            rec = parse(buf)
        except ValueError:
            rec = None
        if rec is None:
            continue
        rec["row"], rec["app"] = r, APP_GOOSE
        recs.append(rec)
        gocb = rec.get("goose_gocb")
        code = _sequence(state, (rec["goose_appid"], gocb), int(view.eth_src[r]),
                         rec.get("goose_stnum"), rec.get("goose_sqnum"))
        ops.append({"row": r, "app": APP_GOOSE, "direction": DIR_OTHER, "code": code,
                    "unit": rec["goose_appid"], "ref": rec.get("goose_stnum"), "service": gocb})
    schema = {"row": pl.Int64(), "app": pl.UInt8(), **{c: PACKETS[c] for c in _COLS[2:]}}
    cols = pl.DataFrame([{c: r.get(c) for c in _COLS} for r in recs], schema=schema, orient="row") \
        if recs else pl.DataFrame(schema=schema)
    return AppResult(columns=cols, ops=ics.ops_frame(None, ops))
