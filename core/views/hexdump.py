"""Packet bytes as hex and ASCII lines, Wireshark's bytes pane style. Bytes outside printable
ASCII are shown as '.', so wire bytes can never carry markup or control characters out."""

from __future__ import annotations


def hex_lines(data: bytes, width: int = 16) -> list[str]:
    """'0010  45 00 00 3c 1c 46 40 00  40 06 b1 e6 ac 10 00 0c   E..<.F@.@.......' per `width` bytes."""
    out = []
    half = width // 2
    for off in range(0, len(data), width):
        chunk = data[off:off + width]
        hexes = [f"{b:02x}" for b in chunk] + ["  "] * (width - len(chunk))
        left, right = " ".join(hexes[:half]), " ".join(hexes[half:])
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        out.append(f"{off:04x}  {left}  {right}   {text}")
    return out


__all__ = ["hex_lines"]
