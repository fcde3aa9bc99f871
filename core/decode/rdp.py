"""RDP on TCP 3389: TPKT/X.224 packets, and the cookie and requested protocols of a Connection Request.

Every TPKT packet on 3389 is labelled RDP (vectorised, with its X.224 PDU type in `cotp_type`); only
Connection Requests (a handful per session) are walked in Python:

    TPKT 03 00 len16 | LI E0 dst-ref16 src-ref16 class | "Cookie: mstshash=<user>\\r\\n" | RDP_NEG_REQ

rdp_cookie is <user> exactly as sent, decoded as Latin-1 (MS-RDPBCGR calls it an ANSI string, so a
byte is a character; lossless), with markup, ANSI escapes and control characters kept verbatim: the
console escapes them, not the decoder. (tshark shows each byte above 0x7f as U+FFFD instead.)
A routing token ("Cookie: msts=...") is not a user and is ignored.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode.schema import APP_RDP, PACKETS
from plantwatch.core.decode.view import AppResult, PacketView, port_rows

RDP_PORT = 3389
_X224_CR = 0x0E
_COOKIE = b"Cookie: mstshash="
_COLUMNS = ("cotp_type", "rdp_cookie", "rdp_protocols")
_SCHEMA = {"row": pl.Int64(), "app": pl.UInt8(), **{c: PACKETS[c] for c in _COLUMNS}}


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = port_rows(view, 6, {RDP_PORT})
    rows = rows[view.pay_len[rows] >= 6]
    p = view.pay[rows]
    d = view.data
    return rows[(d[p] == 3) & (d[p + 1] == 0)]


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    rows = np.asarray(rows, dtype=np.int64)
    code = view.data[view.pay[rows] + 5].astype(np.int64) >> 4 if rows.size else rows
    cookies: list[str | None] = [None] * rows.size
    protocols: list[int | None] = [None] * rows.size
    for i in np.flatnonzero(code == _X224_CR):
        cookies[i], protocols[i] = parse_cr(view.payload(int(rows[i])))
    cols = {"row": rows, "app": np.full(rows.size, APP_RDP, dtype=np.uint8),
            "cotp_type": code, "rdp_cookie": cookies, "rdp_protocols": protocols}
    return AppResult(columns=pl.DataFrame(cols, schema=_SCHEMA))


def parse_cr(payload: bytes) -> tuple[str | None, int | None]:
    """(cookie user, requestedProtocols) of a TPKT X.224 Connection Request payload."""
    if len(payload) < 11:
        return None, None
    tpkt_len = (payload[2] << 8) | payload[3]
    end = min(len(payload), tpkt_len, 5 + payload[4])
    pos = 11  # TPKT 4 + LI 1 + code, dst-ref, src-ref, class 6
    user: str | None = None
    if payload.startswith(b"Cookie: ", pos):
        crlf = payload.find(b"\r\n", pos, end)
        if crlf < 0:
            return None, None
        if payload.startswith(_COOKIE, pos):
            user = payload[pos + len(_COOKIE) : crlf].decode("latin-1")
        pos = crlf + 2
    protocols: int | None = None
    if end - pos >= 8 and payload[pos] == 0x01:  # TYPE_RDP_NEG_REQ, flags, length 8 (LE)
        protocols = int.from_bytes(payload[pos + 4 : pos + 8], "little")
    return user, protocols
