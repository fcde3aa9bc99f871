"""MAC address vendor lookup (OUI) from Wireshark's manuf file.

Reads $PLANTWATCH_MANUF or /usr/share/wireshark/manuf (or another usual place) once, lazily;
falls back to core/data/oui_fallback.tsv (a few vendors common on plant networks) when no manuf
file exists. Entries are kept in dicts keyed by the 24-bit prefix, with the /28 and /36 blocks
(IEEE MA-M and MA-S) in their own dicts, checked first, so a lookup is at most three dict hits.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

MANUF_PATHS = (
    "/usr/share/wireshark/manuf",
    "/usr/local/share/wireshark/manuf",
    "/opt/homebrew/share/wireshark/manuf",
    "/Applications/Wireshark.app/Contents/Resources/share/wireshark/manuf",
)

# Used only when no manuf file is found: a few vendors common on plant networks, extracted from
# the manuf file (same "prefix<TAB>name" format).
FALLBACK_PATH = Path(__file__).resolve().parent.parent / "data" / "oui_fallback.tsv"


class OuiTable:
    def __init__(self) -> None:
        self.p24: dict[int, str] = {}
        self.p28: dict[int, str] = {}   # key: top 28 bits
        self.p36: dict[int, str] = {}   # key: top 36 bits
        self.source = ""

    @classmethod
    def from_manuf(cls, path: str) -> OuiTable:
        t = cls()
        t.source = path
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line or line[0] == "#":
                    continue
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 2:
                    continue
                prefix = parts[0].strip()
                name = (parts[2] if len(parts) > 2 and parts[2].strip() else parts[1]).strip()
                bits = 24
                if "/" in prefix:
                    prefix, _, b = prefix.partition("/")
                    try:
                        bits = int(b)
                    except ValueError:
                        continue
                hexs = "".join(ch for ch in prefix if ch not in ":-.")
                try:
                    val = int(hexs, 16)
                except ValueError:
                    continue
                nbytes = len(hexs) // 2
                if nbytes == 3 and bits == 24:
                    t.p24[val] = name
                elif nbytes == 6 and bits in (28, 36):
                    if bits == 28:
                        t.p28[val >> 20] = name
                    else:
                        t.p36[val >> 12] = name
                elif nbytes == 6 and bits == 24:
                    t.p24[val >> 24] = name
                # well-known full addresses and other masks are not vendors: skipped
        return t

    @classmethod
    def fallback(cls) -> OuiTable:
        try:
            return cls.from_manuf(str(FALLBACK_PATH))
        except OSError:
            return cls()

    def lookup(self, mac: int | None) -> str | None:
        """Vendor name of a 48-bit MAC, or None (unknown, locally administered, group)."""
        if mac is None:
            return None
        m = int(mac)
        if self.p36:
            v = self.p36.get(m >> 12)
            if v is not None:
                return v
        if self.p28:
            v = self.p28.get(m >> 20)
            if v is not None:
                return v
        v = self.p24.get(m >> 24)
        if v is None and (m >> 40) & 0x02:
            return "(locally administered)"
        return v

    def lookup_many(self, macs: np.ndarray) -> list[str | None]:
        """Vendors of many MACs (each distinct prefix looked up once)."""
        arr = np.asarray(macs, dtype=np.uint64)
        if arr.size == 0:
            return []
        uniq, inv = np.unique(arr, return_inverse=True)
        names = [self.lookup(int(x)) if x else None for x in uniq.tolist()]
        return [names[i] for i in np.asarray(inv).reshape(-1).tolist()]


@lru_cache(maxsize=1)
def table() -> OuiTable:
    """The process-wide table (loaded on first use)."""
    env = os.environ.get("PLANTWATCH_MANUF")
    for p in ((env,) if env else ()) + MANUF_PATHS:
        if p and os.path.isfile(p):
            try:
                return OuiTable.from_manuf(p)
            except OSError:
                continue
    return OuiTable.fallback()


def vendor(mac: int | None) -> str | None:
    return table().lookup(mac)
