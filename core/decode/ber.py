"""A small BER (ASN.1 Basic Encoding Rules) reader for the decoders that walk BER per packet
(MMS, GOOSE). Definite lengths only (what MMS and GOOSE use); every read is bounded by its
enclosing element, and malformed input raises ValueError.
"""

from __future__ import annotations

from collections.abc import Iterator


def tlv(buf: bytes, off: int, end: int) -> tuple[int, int, int, int]:
    """(class|constructed byte, tag number, value start, value end) of the element at `off`."""
    if off + 2 > end:
        raise ValueError("truncated BER header")
    first = buf[off]
    num = first & 0x1F
    i = off + 1
    if num == 0x1F:  # high tag number: base-128 digits
        num = 0
        for _ in range(4):
            if i >= end:
                raise ValueError("truncated BER tag")
            b = buf[i]
            i += 1
            num = (num << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        else:
            raise ValueError("BER tag too long")
    if i >= end:
        raise ValueError("truncated BER length")
    n = buf[i]
    i += 1
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or i + k > end:
            raise ValueError("unsupported BER length")
        n = int.from_bytes(buf[i : i + k], "big")
        i += k
    if i + n > end:
        raise ValueError("BER value runs past its container")
    return first & 0xE0, num, i, i + n


def children(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """The elements inside a constructed value [start, end)."""
    off = start
    while off < end:
        cls, num, vs, ve = tlv(buf, off, end)
        yield cls, num, vs, ve
        off = ve


def integer(buf: bytes, start: int, end: int) -> int:
    if end <= start or end - start > 8:
        raise ValueError("bad BER integer")
    return int.from_bytes(buf[start:end], "big", signed=True)


def unsigned(buf: bytes, start: int, end: int) -> int:
    if end <= start or end - start > 9:
        raise ValueError("bad BER integer")
    return int.from_bytes(buf[start:end], "big", signed=False)


def text(buf: bytes, start: int, end: int) -> str:
    """A VisibleString as the wire has it (latin-1, so no byte is lost; callers escape it)."""
    return buf[start:end].decode("latin-1")
