"""Zones: named parts of the plant network (IT, OT, DMZ) from CIDRs and VLAN ids.

The zones file is TOML, one ``[[zone]]`` table per zone::

    # zones.toml
    [[zone]]
    name = "Computing"          # shown in the console; unique
    kind = "it"                 # it | ot | dmz
    cidrs = ["10.10.10.0/24"]   # IPv4 or IPv6 networks (optional if vlans is given)
    vlans = [10]                # 802.1Q VLAN ids (optional if cidrs is given)

    [[zone]]
    name = "Industrial"
    kind = "ot"
    cidrs = ["10.20.20.0/24"]
    vlans = [20]

An address is in the zone of the longest matching CIDR; when no CIDR matches, the VLAN it was seen
on decides; otherwise it is "internal" (private, link-local, loopback, multicast... see
core/decode/addr.py) or "external" (global unicast), and the zone kind is the same word.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plantwatch.core.decode import addr
from plantwatch.core.inventory.errors import ZonesError  # noqa: F401 (re-exported)

KINDS = ("it", "ot", "dmz")
INTERNAL = "internal"
EXTERNAL = "external"




@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    kind: str
    cidrs: tuple[str, ...] = ()
    vlans: tuple[int, ...] = ()


@dataclass(slots=True)
class Zones:
    zones: tuple[Zone, ...] = ()
    # (hi, lo, plen, zone index), longest prefix first
    _nets: list[tuple[int, int, int, int]] = field(default_factory=list, repr=False)
    _vlans: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        nets = []
        for i, z in enumerate(self.zones):
            for c in z.cidrs:
                hi, lo, plen = addr.parse_cidr(c)
                nets.append((hi, lo, plen, i))
            for v in z.vlans:
                self._vlans.setdefault(int(v), i)
        nets.sort(key=lambda t: -t[2])
        self._nets = nets

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def default(cls) -> Zones:
        """No named zones: every address is internal or external."""
        return cls(())

    @classmethod
    def load(cls, path: str | Path) -> Zones:
        p = str(path)
        try:
            with open(p, "rb") as f:
                doc = tomllib.load(f)
        except FileNotFoundError:
            raise ZonesError(p, "file not found") from None
        except OSError as e:
            raise ZonesError(p, e.strerror or str(e)) from None
        except tomllib.TOMLDecodeError as e:
            raise ZonesError(p, f"not valid TOML: {e}") from None
        return cls.from_dict(doc, source=p)

    @classmethod
    def from_dict(cls, doc: dict, source: str = "<zones>") -> Zones:
        raw = doc.get("zone", [])
        unknown = sorted(set(doc) - {"zone"})
        if unknown:
            raise ZonesError(source, f"unknown top-level key {unknown[0]!r} (expected [[zone]] tables)")
        if not isinstance(raw, list):
            raise ZonesError(source, "'zone' must be an array of tables: write [[zone]]")
        zones: list[Zone] = []
        seen: set[str] = set()
        for n, z in enumerate(raw, 1):
            where = f"zone #{n}"
            if not isinstance(z, dict):
                raise ZonesError(source, f"{where}: must be a table")
            name = z.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ZonesError(source, f"{where}: 'name' must be a non-empty string")
            where = f"zone {name!r}"
            if name in seen:
                raise ZonesError(source, f"{where}: duplicate name")
            if name.lower() in (INTERNAL, EXTERNAL):
                raise ZonesError(source, f"{where}: the name is reserved")
            seen.add(name)
            extra = sorted(set(z) - {"name", "kind", "cidrs", "vlans"})
            if extra:
                raise ZonesError(source, f"{where}: unknown key {extra[0]!r}")
            kind = z.get("kind")
            if kind not in KINDS:
                raise ZonesError(source, f"{where}: 'kind' must be one of it, ot, dmz (got {kind!r})")
            cidrs = z.get("cidrs", [])
            vlans = z.get("vlans", [])
            if not isinstance(cidrs, list) or not all(isinstance(c, str) for c in cidrs):
                raise ZonesError(source, f"{where}: 'cidrs' must be a list of strings")
            if not isinstance(vlans, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in vlans
            ):
                raise ZonesError(source, f"{where}: 'vlans' must be a list of integers")
            for c in cidrs:
                try:
                    addr.parse_cidr(c)
                except ValueError:
                    raise ZonesError(source, f"{where}: bad CIDR {c!r}") from None
            for v in vlans:
                if not 0 <= v <= 4095:
                    raise ZonesError(source, f"{where}: VLAN id {v} outside 0..4095")
            if not cidrs and not vlans:
                raise ZonesError(source, f"{where}: needs 'cidrs' or 'vlans'")
            zones.append(Zone(name, kind, tuple(cidrs), tuple(vlans)))
        return cls(tuple(zones))

    # --- classification -------------------------------------------------------------------

    def zone_index(self, hi: np.ndarray, lo: np.ndarray, vlan: np.ndarray | None = None) -> np.ndarray:
        """Index into self.zones per address (int32); -1 internal, -2 external."""
        hi = np.asarray(hi, dtype=np.uint64)
        lo = np.asarray(lo, dtype=np.uint64)
        out = np.full(hi.shape, -1, dtype=np.int32)
        todo = np.ones(hi.shape, dtype=bool)
        for nh, nl, plen, i in self._nets:
            m = todo & addr.in_prefix(hi, lo, nh, nl, plen)
            out[m] = i
            todo &= ~m
        glob = ~addr.is_internal(hi, lo)
        if vlan is not None and self._vlans:
            # the VLAN names the zone of local addresses only: internet hosts reach every VLAN
            # through the router and stay external
            v = np.asarray(vlan)
            v = np.where(np.isnan(v), -1, v).astype(np.int64) if v.dtype.kind == "f" else v.astype(np.int64)
            for vid, i in self._vlans.items():
                m = todo & ~glob & (v == vid)
                out[m] = i
                todo &= ~m
        if todo.any():
            out[todo & glob] = -2
        return out

    def names(self) -> list[str]:
        """Zone names by index, with 'internal' and 'external' for -1 and -2 appended."""
        return [z.name for z in self.zones] + [EXTERNAL, INTERNAL]

    def kinds(self) -> list[str]:
        return [z.kind for z in self.zones] + [EXTERNAL, INTERNAL]

    def classify(
        self, hi: np.ndarray, lo: np.ndarray, vlan: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(zone name, zone kind) object arrays for every address."""
        idx = self.zone_index(hi, lo, vlan)
        names = np.array(self.names(), dtype=object)
        kinds = np.array(self.kinds(), dtype=object)
        return names[idx], kinds[idx]  # -1/-2 index the appended internal/external

    def classify_one(self, ip: str, vlan: int | None = None) -> tuple[str, str]:
        hi, lo = addr.text_to_ip(ip)
        v = None if vlan is None else np.array([vlan])
        n, k = self.classify(np.array([hi], np.uint64), np.array([lo], np.uint64), v)
        return str(n[0]), str(k[0])
