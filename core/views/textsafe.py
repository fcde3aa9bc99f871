"""Strings that came off the wire, made safe to show: control characters escaped, nothing else.

Markup safety is the console's job (it renders these as plain Text, never as markup); this module
only guarantees that no byte from a packet can move a terminal's cursor or change its colours.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(s: str | None, limit: int = 200) -> str:
    """`s` with every control or bidi-override character escaped, cut to `limit` characters."""
    if s is None:
        return ""
    out = _CONTROL.sub(_escape, s)
    return out if len(out) <= limit else out[: limit - 1] + "…"
