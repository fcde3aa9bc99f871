"""Mitsubishi MELSEC MC protocol / SLMP: 3E and 4E frames, binary and ASCII, on TCP and UDP.

Frame layouts (MELSEC Communication Protocol Reference Manual SH-080008, SLMP SH-080956):

    3E request   50 00 | net pc io16 station | len16 | timer16 cmd16 subcmd16 data
    3E response  D0 00 | net pc io16 station | len16 | end code16 data
    4E request   54 00 serial16 00 00 | (as 3E from net)       4E response: D4 00 serial16 00 00 ...

Binary fields are little-endian and `len` counts the bytes after it. ASCII frames spell every
field as upper-case hex, most significant first ("5000", "D000", "5400", "D400"), so a field of n
bytes takes 2n characters; the device of a batch command is a 2-character code ("D*") and a
6-digit number (decimal, hexadecimal for X Y B W SB SW DX DY). Device access starts, for the
subcommands 0000/0001, device number24 + device code8 (binary); 0002/0003 (iQ-R) use 32 + 16.

Ops: one per frame: code = command, sub = subcommand, direction from the subheader, trans = serial
number (4E), unit = PC number, exception = end code of a response when not 0; batch and random
access also ref = first device number, area = its binary device code, count = points. A response
carries no command (code null; pair it with the request by trans or flow).

MELSOFT, the engineering protocol of GX Works (requests 57 0x 00 00 00 11 11, responses D7 ...,
length16 at byte 19 counting the bytes after byte 20; discovery probes 5A 00 00 xx / DA 00 00 xx
on UDP) is recognised: one op with service 'MELSOFT', no code (its commands are not published).

MC/SLMP has no standard port (each PLC is set up with its own; iQ-R reserves 5000-5009 for the
system), so frames are recognised on any TCP/UDP port by their header: the subheader, a length
that matches the payload and, for binary frames, a plausible request-destination I/O number
(03FF own station, 03D0-03D3, 0000-01FF); the MELSOFT discovery probes only on UDP 5560.

Vectorised: binary MC frames and MELSOFT messages filling the payload. Walked per packet: ASCII.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.ics_plc import MELSOFT_UDP
from plantwatch.core.decode.schema import APP_MELSEC, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.decode.view import (
    AppResult,
    PacketView,
    gather_le16,
    gather_le32,
    gather_u8,
    proto_rows,
)

_BATCH = (0x0401, 0x1401)
_RANDOM = (0x0403, 0x1402)
ASCII_DEVICES = {
    "X*": 0x9C, "Y*": 0x9D, "M*": 0x90, "L*": 0x92, "F*": 0x93, "V*": 0x94, "B*": 0xA0,
    "D*": 0xA8, "W*": 0xB4, "R*": 0xAF, "ZR": 0xB0, "Z*": 0xCC, "S*": 0x98, "SM": 0x91,
    "SD": 0xA9, "SB": 0xA1, "SW": 0xB5, "DX": 0xA2, "DY": 0xA3, "TN": 0xC2, "TS": 0xC1,
    "TC": 0xC0, "CN": 0xC5, "CS": 0xC4, "CC": 0xC3, "SN": 0xC8, "SS": 0xC7, "SC": 0xC6,
}
_HEX_NUMBERED = {"X*", "Y*", "B*", "W*", "SB", "SW", "DX", "DY"}
_ASCII_HEADS = {b"5000": (DIR_REQUEST, 0), b"D000": (DIR_RESPONSE, 0),
                b"5400": (DIR_REQUEST, 8), b"D400": (DIR_RESPONSE, 8)}


_FIRST = np.zeros(256, dtype=bool)
_FIRST[[0x50, 0xD0, 0x54, 0xD4, ord("5"), ord("D"), 0x57, 0xD7, 0x5A, 0xDA]] = True


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = np.concatenate([proto_rows(view, 6)[0], proto_rows(view, 17)[0]])
    rows = rows[view.pay_len[rows] >= 4]
    rows = np.sort(rows[_FIRST[view.data[view.pay[rows]]]])  # cheap first-byte filter before the rest
    if rows.size == 0:
        return rows
    return rows[_kind(view, rows) > 0]


def _kind(view: PacketView, rows: np.ndarray) -> np.ndarray:
    """Per row: 0 not MELSEC, 1 binary MC, 2 ASCII MC, 3 MELSOFT."""
    d = view.data
    pos, plen, end = view.span(rows)
    b0, _ = gather_u8(d, pos, end)
    b1, _ = gather_u8(d, pos + 1, end)
    head4, _ = gather_le32(d, pos, end)
    four = b0 == 0x54
    four |= b0 == 0xD4
    hlen = np.where(four, 13, 9)  # bytes up to and including the length field
    blen, _ = gather_le16(d, pos + hlen - 2, end)
    io_hi, _ = gather_u8(d, pos + hlen - 4, end)  # I/O number: 03FF own station, 03Dx, 0000-01FF
    binary = (np.isin(b0, (0x50, 0xD0, 0x54, 0xD4)) & (b1 == 0) & (hlen + blen == plen)
              & (blen >= 2) & (io_hi <= 3) & (io_hi != 2))
    asc = np.isin(head4, [int.from_bytes(k, "little") for k in _ASCII_HEADS]) & (plen >= 22)
    b5, _ = gather_u8(d, pos + 5, end)
    b6, _ = gather_u8(d, pos + 6, end)
    mlen, _ = gather_le16(d, pos + 19, end)
    soft = np.isin(b0, (0x57, 0xD7)) & (b1 <= 1) & (b5 == 0x11) & (b6 == 0x11) & (21 + mlen == plen)
    udp_soft = (view.ip_proto[rows] == 17) & ((view.sport[rows] == MELSOFT_UDP) | (view.dport[rows] == MELSOFT_UDP))
    probe = np.isin(b0, (0x5A, 0xDA)) & (b1 == 0) & udp_soft & (plen >= 4)
    probe &= (head4 >> 16 & 0xFF) == 0
    return np.select([binary, asc, soft | probe], [1, 2, 3], 0)


def _hex(s: bytes, a: int, n: int) -> int:
    return int(s[a : a + n].decode("ascii"), 16)


def parse_ascii(s: bytes) -> dict | None:
    """One ASCII MC frame; None when it is not one (bad hex, length mismatch)."""
    head = _ASCII_HEADS.get(s[:4])
    if head is None:
        return None
    direction, extra = head
    try:
        op: dict = {"app": APP_MELSEC, "direction": direction, "unit": _hex(s, 6 + extra, 2)}
        if extra:
            op["trans"] = _hex(s, 4, 4)
        base = 14 + extra  # the length field
        if base + 4 + _hex(s, base, 4) != len(s):
            return None
        if direction == DIR_RESPONSE:
            endc = _hex(s, base + 4, 4)
            if endc:
                op["exception"] = endc
            return op
        cmd, sub = _hex(s, base + 8, 4), _hex(s, base + 12, 4)
        op.update(code=cmd, sub=sub)
        dev = base + 16
        if cmd in _BATCH and sub in (0, 1):
            code = s[dev : dev + 2].decode("ascii")
            num = s[dev + 2 : dev + 8].decode("ascii")
            op["area"] = ASCII_DEVICES.get(code)
            op["ref"] = int(num, 16 if code in _HEX_NUMBERED else 10)
            op["count"] = _hex(s, dev + 8, 4)
    except (ValueError, UnicodeDecodeError):
        return None
    return op


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return AppResult()
    d = view.data
    kind = _kind(view, rows)
    pos, _, end = view.span(rows)
    # binary MC
    f = np.flatnonzero(kind == 1)
    p, e = pos[f], end[f]
    b0, _ = gather_u8(d, p, e)
    four = np.isin(b0, (0x54, 0xD4))
    resp = np.isin(b0, (0xD0, 0xD4))
    a = np.where(four, p + 6, p + 2)  # network number
    serial, _ = gather_le16(d, p + 2, e)
    pc, _ = gather_u8(d, a + 1, e)
    w9, _ = gather_le16(d, a + 7, e)  # end code (response)
    cmd, _ = gather_le16(d, a + 9, e)
    sub, _ = gather_le16(d, a + 11, e)
    # first device: batch (after subcmd) or random (after the 1-2 point-count bytes)
    c0, _ = gather_u8(d, a + 13, e)
    c1, _ = gather_u8(d, a + 14, e)
    req = ~resp
    batch = req & np.isin(cmd, _BATCH)
    rnd = req & np.isin(cmd, _RANDOM)
    bit_rnd = rnd & (cmd == 0x1402) & ((sub & 1) == 1)
    dev = a + 13 + np.where(batch, 0, np.where(bit_rnd, 1, 2))
    wide = (sub & 2) != 0  # 0002/0003: 32-bit number, 16-bit code
    num24, _ = gather_le32(d, dev - 1, e)
    num32, n32_ok = gather_le32(d, dev, e)
    dcode, _ = gather_u8(d, dev + np.where(wide, 4, 3), e)
    dcode16, _ = gather_le16(d, dev + 4, e)
    pts, pts_ok = gather_le16(d, dev + np.where(wide, 6, 4), e)
    has_dev = (batch | rnd) & n32_ok & (pts_ok | rnd)
    count = np.where(batch, pts, np.where(bit_rnd, c0, c0 + c1))
    fast_cols = {
        "row": rows[f], "app": np.full(f.size, APP_MELSEC), "unit": pc,
        "direction": np.where(resp, DIR_RESPONSE, DIR_REQUEST),
        "trans": (serial, four), "code": (cmd, req), "sub": (sub, req),
        "exception": (w9, resp & (w9 != 0)),
        "ref": (np.where(wide, num32, num24 >> 8), has_dev),
        "area": (np.where(wide, dcode16, dcode), has_dev),
        "count": (count, (batch & pts_ok) | rnd),
    }
    # MELSOFT, recognised
    m = np.flatnonzero(kind == 3)
    mb0, _ = gather_u8(d, pos[m], end[m])
    slow: list[dict] = [
        {"row": int(r), "app": APP_MELSEC, "service": "MELSOFT",
         "direction": DIR_RESPONSE if b & 0x80 else DIR_REQUEST}
        for r, b in zip(rows[m].tolist(), mb0.tolist(), strict=True)
    ]
    mine = [rows[kind != 2]]
    for i in np.flatnonzero(kind == 2):
        r = int(rows[i])
        op = parse_ascii(view.payload(r))
        if op is not None:
            op["row"] = r
            slow.append(op)
            mine.append(np.array([r], np.int64))
    got = np.sort(np.concatenate(mine))
    cols = pl.DataFrame({"row": got, "app": np.full(got.size, APP_MELSEC)},
                        schema={"row": pl.Int64(), "app": pl.UInt8()})
    return AppResult(columns=cols, ops=ics.ops_frame(fast_cols, slow))
