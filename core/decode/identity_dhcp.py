"""DHCP identity: the vendor class (option 60) and the parameter request list (option 55, the
list of option codes a client's DHCP stack asks for, which tells stacks apart) a host sends.

DHCP clients often have no address yet: a client message is attributed to its client address
(ciaddr) when set, else to the address it requests (option 50); one with neither is left out. A
server's message (op 2) is attributed to its sender.
"""

from __future__ import annotations

import numpy as np

from plantwatch.core.decode.addr import v4_to_pair
from plantwatch.core.decode.schema import APP_DHCP
from plantwatch.core.decode.view import PacketView

SOURCE = "dhcp"


def candidate_rows(app: np.ndarray) -> np.ndarray:
    return np.flatnonzero(app == APP_DHCP)


def parse(msg: bytes) -> tuple[list[tuple[str, str]], int | None]:
    """(attributes, the client's IPv4 address as an integer, or None for a server's message)."""
    if len(msg) < 240:
        return [], None
    out: list[tuple[str, str]] = []
    client = msg[0] == 1
    addr = int.from_bytes(msg[12:16], "big") if client else None
    pos = 240
    while pos + 2 <= len(msg) and msg[pos] != 255:
        code = msg[pos]
        if code == 0:
            pos += 1
            continue
        ln = msg[pos + 1]
        body = msg[pos + 2 : pos + 2 + ln]
        if len(body) < ln:
            break
        if code == 60 and ln:
            out.append(("dhcp_vendor_class", body.decode("latin-1").strip("\0 ")))
        elif code == 55 and ln:
            out.append(("dhcp_parameters", ",".join(str(b) for b in body)))
        elif code == 50 and ln == 4 and client and not addr:
            addr = int.from_bytes(body, "big")
        pos += 2 + ln
    return out, addr


def extract(view: PacketView, rows: list[int], state: dict) -> list[tuple[int, tuple]]:
    out = []
    for r in rows:
        attrs, addr = parse(view.payload(r))
        if not attrs:
            continue
        if addr is None:
            out += [(r, ("", a, v, SOURCE)) for a, v in attrs]
        elif addr:
            hi, lo = v4_to_pair(addr)
            out += [(r, ("", a, v, SOURCE, hi, lo)) for a, v in attrs]
    return out
