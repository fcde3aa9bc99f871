"""A small pcapng writer for evidence handed to someone else: packets with comments.

One section, one interface per link type (nanosecond timestamps), one Enhanced Packet Block per
packet, each with any number of `opt_comment` options (Wireshark's "packet comments",
tshark's `frame.comment`). Nothing in the file depends on the wall clock or the host, so the
same packets and comments give the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

_OPT_END, _OPT_COMMENT = 0, 1
_SHB_USERAPPL = 4
_IF_TSRESOL = 9


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * ((-len(value)) % 4)


def _block(btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


class CommentedPcapng:
    """Write with `add(ts_ns, linktype, data, wirelen, comments)`; close (or use as a context
    manager) to finish. Interfaces are created on first use of a link type, in that order."""

    def __init__(self, path: str | Path, application: str = "plantwatch") -> None:
        self.path = Path(path)
        self._f = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._ifaces: dict[int, int] = {}
        self.count = 0
        self._f.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                             + _option(_SHB_USERAPPL, application.encode()) + _option(_OPT_END, b"")))

    def _iface(self, linktype: int) -> int:
        if linktype not in self._ifaces:
            body = struct.pack("<HHI", linktype, 0, 262144) + _option(_IF_TSRESOL, bytes([9])) \
                + _option(_OPT_END, b"")
            self._f.write(_block(1, body))
            self._ifaces[linktype] = len(self._ifaces)
        return self._ifaces[linktype]

    def add(self, ts_ns: int, linktype: int, data: bytes, wirelen: int | None = None,
            comments: Sequence[str] = ()) -> None:
        iface = self._iface(int(linktype))
        t = int(ts_ns)
        n = len(data)
        body = struct.pack("<IIIII", iface, (t >> 32) & 0xFFFFFFFF, t & 0xFFFFFFFF, n,
                           n if wirelen is None else int(wirelen))
        body += data + b"\0" * ((-n) % 4)
        if comments:
            body += b"".join(_option(_OPT_COMMENT, c.encode("utf-8")[:65000]) for c in comments)
            body += _option(_OPT_END, b"")
        self._f.write(_block(6, body))
        self.count += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> CommentedPcapng:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["CommentedPcapng"]
