"""S7comm identity: Read SZL answers 0x0011 (module identification) and 0x001C (component
identification), from the userdata responses s7.py located (function group 4, subfunction 1).

An answer split into data units (last-data-unit = no) is put back together here from its units,
keyed by flow and data-unit reference, and reported on the unit completing it, as tshark does.

SZL 0x0011 records (28 bytes): index, MLFB (20 chars), module type id, Ausbg, Ausbe. Index 0x0001
is the module's order number; index 0x0007 the firmware, whose version is the Ausbg low byte and
the two Ausbe bytes ("V3.2.7" from Ausbg 0x5603, Ausbe 0x0207; 0x56 is the letter 'V').
SZL 0x001C records (34 bytes): index, then a string field per index.
"""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.identity import clean, flow_key
from plantwatch.core.decode.schema import APP_S7, DIR_RESPONSE
from plantwatch.core.decode.view import PacketView

SOURCE = "s7comm"
_MAX_OPEN = 1024
# SZL 0x001C index -> attribute (strings start right after the index)
_COMPONENT = {1: "name", 2: "module_name", 3: "plant_tag", 4: "copyright", 5: "serial",
              7: "module", 8: "memory_card_serial"}
_WIDTH = {1: 24, 2: 24, 3: 32, 4: 26, 5: 24, 7: 32, 8: 32}


def candidates(ops: pl.DataFrame) -> pl.Series:
    """Batch rows holding an S7 Read SZL response."""
    return ops.filter((pl.col("app") == APP_S7) & (pl.col("group") == 4) & (pl.col("sub") == 1)
                      & (pl.col("direction") == DIR_RESPONSE))["row"].unique()


def firmware(ausbg: int, ausbe: int) -> str:
    """The version of an SZL 0x0011 firmware record."""
    letter = chr(ausbg >> 8) if 0x41 <= (ausbg >> 8) <= 0x5A else "V"
    return f"{letter}{ausbg & 0xFF}.{ausbe >> 8}.{ausbe & 0xFF}"


def parse_szl(data: bytes) -> list[tuple[str, str]]:
    """(attribute, value) pairs of a complete SZL answer body (from the SZL id on)."""
    if len(data) < 8:
        return []
    szl_id = (data[0] << 8) | data[1]
    rec_len = (data[4] << 8) | data[5]
    count = (data[6] << 8) | data[7]
    out: list[tuple[str, str]] = []
    if rec_len < 2:
        return out
    for k in range(min(count, 64)):
        rec = data[8 + k * rec_len : 8 + (k + 1) * rec_len]
        if len(rec) < rec_len:
            break
        idx = (rec[0] << 8) | rec[1]
        if szl_id & 0xFF == 0x11 and rec_len >= 28:
            ausbg = (rec[24] << 8) | rec[25]
            ausbe = (rec[26] << 8) | rec[27]
            if idx == 0x0001:
                out.append(("model", clean(rec[2:22])))
            elif idx == 0x0007:
                out.append(("firmware", firmware(ausbg, ausbe)))
        elif szl_id & 0xFF == 0x1C and idx in _COMPONENT:
            out.append((_COMPONENT[idx], clean(rec[2 : 2 + _WIDTH[idx]])))
    return out


def _tpdus(payload: bytes):
    """The S7 PDUs (from 0x32) of the COTP DT TPDUs in a segment."""
    off = 0
    while off + 7 <= len(payload) and payload[off] == 3:
        tlen = (payload[off + 2] << 8) | payload[off + 3]
        if tlen < 7 or off + tlen > len(payload):
            return
        li = payload[off + 4]
        if payload[off + 5] >> 4 == 0x0F:
            yield payload[off + 5 + li : off + tlen]
        off += tlen


def parse_row(payload: bytes, key: tuple, state: dict) -> list[tuple[str, str]]:
    """Identity attributes completed by one segment's userdata answers."""
    out: list[tuple[str, str]] = []
    held: dict = state.setdefault("szl_units", {})
    for pdu in _tpdus(payload):
        if len(pdu) < 10 or pdu[0] != 0x32 or pdu[1] != 7:
            continue
        parlen = (pdu[6] << 8) | pdu[7]
        datlen = (pdu[8] << 8) | pdu[9]
        par = pdu[10 : 10 + parlen]
        data = pdu[10 + parlen : 10 + parlen + datlen]
        if len(par) < 12 or par[:3] != b"\x00\x01\x12" or (par[5] >> 6) != 2 or par[5] & 0x0F != 4 \
                or par[6] != 1 or len(data) < 4 or data[0] != 0xFF:
            continue
        body = data[4 : 4 + ((data[2] << 8) | data[3])]
        dur, more = par[8], par[9]
        fkey = (*key, dur)
        if fkey in held:
            body = held.pop(fkey) + body
        if more and dur:
            if len(held) >= _MAX_OPEN:
                held.clear()
            held[fkey] = body
            continue
        out += parse_szl(body)
    return out


def extract(view: PacketView, rows: list[int], state: dict) -> list[tuple[int, tuple[str, str, str, str]]]:
    out = []
    for r in rows:
        try:
            attrs = parse_row(view.payload(r), flow_key(view, r), state)
        except IndexError:
            continue
        out += [(r, ("", a, v, SOURCE)) for a, v in attrs]
    return out
