"""MAC address vendor lookup (OUI) from Wireshark's manuf file.

Reads $PLANTWATCH_MANUF or /usr/share/wireshark/manuf (or another usual place) once, lazily;
falls back to core/data/oui_fallback.tsv (a few vendors common on plant networks) when no manuf
file exists. The parsed table is cached as plain arrays under $XDG_CACHE_HOME/plantwatch, keyed by
the file's path, size and mtime (parsing the 2 MB file costs about 0.1 CPU s a run, loading the
cache under half of that). Entries are kept in dicts keyed by the 24-bit prefix, with the /28 and
/36 blocks (IEEE MA-M and MA-S) in their own dicts, checked first, so a lookup is at most three
dict hits.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
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
    def cached(cls, path: str) -> OuiTable:
        """from_manuf through the cache: a stale, foreign or broken cache file is parsed anew."""
        st = os.stat(path)
        key = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{sys.version_info[:2]}"
        cache = _cache_dir() / f"oui-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
        try:
            t = cls._from_arrays(np.load(io.BytesIO(cache.read_bytes()), allow_pickle=False))
            t.source = path
            return t
        except (OSError, EOFError, ValueError, KeyError, UnicodeDecodeError):
            pass
        t = cls.from_manuf(path)
        buf = io.BytesIO()
        np.savez(buf, **t._to_arrays())
        _write_private(cache, buf.getvalue())
        return t

    # the cache holds plain arrays (no pickle): per table, the keys and the names joined by \n
    def _to_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for tag, d in (("24", self.p24), ("28", self.p28), ("36", self.p36)):
            out[f"k{tag}"] = np.fromiter(d.keys(), dtype=np.uint64, count=len(d))
            out[f"v{tag}"] = np.frombuffer("\n".join(d.values()).encode(), dtype=np.uint8)
        return out

    @classmethod
    def _from_arrays(cls, arrays: np.lib.npyio.NpzFile) -> OuiTable:
        t = cls()
        for tag in ("24", "28", "36"):
            keys = arrays[f"k{tag}"].tolist()
            names = arrays[f"v{tag}"].tobytes().decode().split("\n") if keys else []
            if len(names) != len(keys):
                raise ValueError("OUI cache: keys and names differ in number")
            setattr(t, f"p{tag}", dict(zip(keys, names, strict=True)))
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
                return OuiTable.cached(p)
            except OSError:
                continue
    return OuiTable.fallback()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "plantwatch"


def _write_private(path: Path, data: bytes) -> None:
    """Best effort: a cache that cannot be written only costs the next run a parse."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        pass


def vendor(mac: int | None) -> str | None:
    return table().lookup(mac)
