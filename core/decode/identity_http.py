"""HTTP identity: the `Server` header of HTTP/1.x responses, which many PLCs, gateways and HMIs
serve from their web interface (`http_server`).

Light on purpose: only a TCP segment sent from port 80, 8080, 8000 or 8443 that starts with an
HTTP/1.x status line is read (8443 is often TLS: a TLS record never starts with `HTTP/`), and
only its response head, up to _MAX_HEAD bytes; a head cut by the segment end is read up to the cut.
Found vectorised on the segment's first bytes, so the cost is per response, not per packet.
Values are kept raw (bounded to _MAX_VALUE characters): displays escape them.

UPnP devices announce themselves the same way over UDP (SSDP, port 1900): a NOTIFY sent to
port 1900 and a search response sent from it carry a `Server` header too, read alike.
"""

from __future__ import annotations

import numpy as np

from plantwatch.core.decode.view import PacketView, gather_be32, gather_u8

SOURCE = "http"
PORTS = (80, 8080, 8000, 8443)
_MAX_HEAD = 4096
_MAX_VALUE = 256
SSDP_PORT = 1900
_HTTP = int.from_bytes(b"HTTP", "big")
_NOTI = int.from_bytes(b"NOTI", "big")


def candidate_rows(view: PacketView) -> np.ndarray:
    tcp = (view.ip_proto == 6) & np.isin(view.sport, PORTS)
    udp = (view.ip_proto == 17) & ((view.sport == SSDP_PORT) | (view.dport == SSDP_PORT))
    cand = np.flatnonzero((tcp | udp) & (view.pay_len >= 12))
    if cand.size == 0:
        return cand
    pos, _, end = view.span(cand)
    head, ok = gather_be32(view.data, pos, end)
    fifth, ok2 = gather_u8(view.data, pos + 4, end)
    response = (head == _HTTP) & (fifth == ord("/"))
    notify = (view.ip_proto[cand] == 17) & (head == _NOTI) & (fifth == ord("F"))
    return cand[ok & ok2 & (response | notify)]


def parse_head(payload: bytes) -> str | None:
    """The `Server` header's value of a response head or an SSDP NOTIFY (None: neither, or no
    such header)."""
    head = payload[:_MAX_HEAD].split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    first = lines[0].split(b" ", 2)
    status = len(first) >= 2 and first[0] in (b"HTTP/1.0", b"HTTP/1.1") and len(first[1]) == 3 and first[1].isdigit()
    if not (status or lines[0].split() == [b"NOTIFY", b"*", b"HTTP/1.1"]):
        return None
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"server":
            text = value.strip().decode("latin-1")[:_MAX_VALUE]
            return text or None
    return None


def extract(view: PacketView, rows: list[int], state: dict) -> list[tuple[int, tuple]]:
    out = []
    for r in rows:
        value = parse_head(view.payload(r))
        if value is not None:
            out.append((r, ("", "http_server", value, SOURCE)))
    return out
