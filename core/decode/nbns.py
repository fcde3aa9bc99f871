"""NetBIOS Name Service on UDP 137: the first name of the packet.

nbns_name follows tshark's nbns.name exactly: the 16-byte first-level-decoded NetBIOS name with
trailing spaces stripped, non-printable bytes shown as <xx>, then the suffix (name type) byte as
<xx>, then the scope labels if any: "WORKGROUP<1d>", "WPAD<00>", "*<00><00>...<00>" (a node status
query). It is the question's name, or the first answer's name when there is no question (responses),
the first occurrence tshark reports. Names that are not valid first-level encodings are null.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode.dns import BadName, read_labels
from plantwatch.core.decode.schema import APP_NBNS, PACKETS
from plantwatch.core.decode.view import AppResult, PacketView, port_rows

PORT = 137
_COLUMNS = ("nbns_name",)
_SCHEMA = {"row": pl.Int64(), "app": pl.UInt8(), **{c: PACKETS[c] for c in _COLUMNS}}


def select(view: PacketView, state: dict) -> np.ndarray:
    rows = port_rows(view, 17, {PORT})
    return rows[view.pay_len[rows] >= 12]


def netbios_name(labels: list[bytes]) -> str | None:
    """tshark's rendering of an encoded name (first label of 32 'A'..'P' characters)."""
    if not labels or len(labels[0]) != 32:
        return None
    enc = labels[0]
    raw = bytearray()
    for i in range(0, 32, 2):
        hi, lo = enc[i] - 0x41, enc[i + 1] - 0x41
        if not (0 <= hi < 16 and 0 <= lo < 16):
            return None
        raw.append((hi << 4) | lo)
    name = "".join(chr(b) if 0x20 <= b <= 0x7E else f"<{b:02x}>" for b in raw[:15]).rstrip(" ")
    name += f"<{raw[15]:02x}>"
    for lab in labels[1:]:
        name += "." + lab.decode("ascii", errors="replace")
    return name


def parse(msg: bytes) -> str | None:
    if len(msg) < 12:
        return None
    qd = (msg[4] << 8) | msg[5]
    an = (msg[6] << 8) | msg[7]
    if qd == 0 and an == 0:
        return None
    try:
        labels, _ = read_labels(msg, 12)
    except BadName:
        return None
    return netbios_name(labels)


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    cols: dict[str, list] = {"row": [], "app": [], "nbns_name": []}
    for r in rows:
        msg = view.payload(int(r))
        if len(msg) < 12:
            continue
        cols["row"].append(int(r))
        cols["app"].append(APP_NBNS)
        cols["nbns_name"].append(parse(msg))
    return AppResult(columns=pl.DataFrame(cols, schema=_SCHEMA))
