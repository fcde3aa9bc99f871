"""Address helpers: the 128-bit (hi, lo) pair <-> text, MAC text, and vectorised classification.

Every IP address in the packet path is two uint64 halves (schema.PACKETS); IPv4 is the
IPv4-mapped form ::ffff:a.b.c.d, i.e. hi == 0 and lo == 0x0000_FFFF_xxxx_xxxx. The functions
taking arrays work on whole numpy arrays at once (they are used per packet); the text functions
are for the few values a user sees.
"""

from __future__ import annotations

import ipaddress

import numpy as np

V4_MAPPED = np.uint64(0xFFFF << 32)
_U32 = np.uint64(0xFFFFFFFF)
# Endpoints known only by their MAC (ICS protocols on Ethernet directly: GOOSE, PROFINET DCP) get
# a pair in 100::/64, the IPv6 discard-only prefix (RFC 6666, never a host): hi = L2_HI and lo =
# the 48-bit MAC. Their text is the MAC's; they classify as link-local (multicast/broadcast MACs
# as such), so sessions, the inventory and the models treat them as local devices.
L2_HI = 0x0100_0000_0000_0000
_L2_HI = np.uint64(L2_HI)
_MAC_BITS = 48

# Address kinds returned by classify().
KIND_GLOBAL = 0
KIND_PRIVATE = 1      # RFC 1918, RFC 6598 (100.64/10), RFC 4193 (fc00::/7)
KIND_LOOPBACK = 2
KIND_LINK_LOCAL = 3
KIND_MULTICAST = 4
KIND_BROADCAST = 5    # 255.255.255.255
KIND_UNSPECIFIED = 6  # 0.0.0.0/8, ::
KIND_NAMES = {KIND_GLOBAL: "global", KIND_PRIVATE: "private", KIND_LOOPBACK: "loopback",
              KIND_LINK_LOCAL: "link-local", KIND_MULTICAST: "multicast",
              KIND_BROADCAST: "broadcast", KIND_UNSPECIFIED: "unspecified"}


def _u64(a: object) -> np.ndarray:
    return np.asarray(a, dtype=np.uint64)


# --- text <-> integers ---------------------------------------------------------------------

def ip_to_text(hi: int, lo: int) -> str:
    """'10.0.0.1' for an IPv4-mapped pair, else the compressed IPv6 text."""
    hi, lo = int(hi), int(lo)
    if hi == L2_HI and lo >> _MAC_BITS == 0:
        return mac_to_text(lo)
    if hi == 0 and (lo >> 32) == 0xFFFF:
        v = lo & 0xFFFFFFFF
        return f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def text_to_ip(s: str) -> tuple[int, int]:
    """(hi, lo) of an IPv4 or IPv6 address text, or of a MAC text (an Ethernet-only endpoint,
    see L2_HI). Raises ValueError on bad text."""
    t = s.strip()
    if len(t) == 17 and t.count(":") + t.count("-") == 5:
        return L2_HI, text_to_mac(t)
    a = ipaddress.ip_address(t)
    if a.version == 4:
        return 0, (0xFFFF << 32) | int(a)
    v = int(a)
    return v >> 64, v & 0xFFFFFFFFFFFFFFFF


def v4_to_pair(v4: int) -> tuple[int, int]:
    """(hi, lo) of an IPv4 address given as a 32-bit integer."""
    return 0, (0xFFFF << 32) | (int(v4) & 0xFFFFFFFF)


def mac_to_text(mac: int | None) -> str:
    """'00:1b:1b:aa:bb:cc' from the 48-bit integer; '' for None."""
    if mac is None:
        return ""
    m = int(mac)
    return ":".join(f"{(m >> s) & 255:02x}" for s in range(40, -8, -8))


def text_to_mac(s: str) -> int:
    """The 48-bit integer of 'aa:bb:cc:dd:ee:ff' (also '-' or '.' separated, or bare hex)."""
    h = "".join(c for c in s if c not in ":-.").strip()
    if len(h) != 12:
        raise ValueError(f"not a MAC address: {s!r}")
    return int(h, 16)


def ip_texts(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """Text of many addresses; converts each distinct pair once."""
    hi, lo = _u64(hi), _u64(lo)
    if hi.size == 0:
        return []
    # distinct pairs by a two-key sort (np.unique(axis=0) sorts rows as records: 6x slower)
    order = np.lexsort((lo, hi))
    sh, sl = hi[order], lo[order]
    first = np.empty(hi.size, dtype=bool)
    first[0] = True
    first[1:] = (sh[1:] != sh[:-1]) | (sl[1:] != sl[:-1])
    texts = [ip_to_text(h, low) for h, low in zip(sh[first].tolist(), sl[first].tolist(), strict=True)]
    inv = np.empty(hi.size, dtype=np.int64)
    inv[order] = np.cumsum(first) - 1
    return [texts[i] for i in inv.tolist()]


# --- CIDRs ---------------------------------------------------------------------------------

def parse_cidr(s: str) -> tuple[int, int, int]:
    """(hi, lo, prefix length in the 128-bit space) of '10.0.0.0/8' or 'fd00::/8'."""
    net = ipaddress.ip_network(s.strip(), strict=False)
    if net.version == 4:
        hi, lo = v4_to_pair(int(net.network_address))
        return hi, lo, 96 + net.prefixlen
    v = int(net.network_address)
    return v >> 64, v & 0xFFFFFFFFFFFFFFFF, net.prefixlen


def _mask_pair(plen: int) -> tuple[np.uint64, np.uint64]:
    full = (1 << 128) - 1
    m = (full << (128 - plen)) & full if plen > 0 else 0
    return np.uint64(m >> 64), np.uint64(m & 0xFFFFFFFFFFFFFFFF)


def in_prefix(hi: np.ndarray, lo: np.ndarray, net_hi: int, net_lo: int, plen: int) -> np.ndarray:
    """Boolean mask of the addresses inside net/plen (plen in the 128-bit space)."""
    mh, ml = _mask_pair(plen)
    return ((_u64(hi) & mh) == (np.uint64(net_hi) & mh)) & ((_u64(lo) & ml) == (np.uint64(net_lo) & ml))


def in_cidr(hi: np.ndarray, lo: np.ndarray, cidr: str) -> np.ndarray:
    return in_prefix(hi, lo, *parse_cidr(cidr))


# --- classification ------------------------------------------------------------------------

def is_v4(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    return (_u64(hi) == 0) & ((_u64(lo) >> np.uint64(32)) == np.uint64(0xFFFF))


_V4_RANGES = [  # (network, prefix length, kind); later entries win
    ("0.0.0.0", 8, KIND_UNSPECIFIED), ("10.0.0.0", 8, KIND_PRIVATE),
    ("100.64.0.0", 10, KIND_PRIVATE), ("127.0.0.0", 8, KIND_LOOPBACK),
    ("169.254.0.0", 16, KIND_LINK_LOCAL), ("172.16.0.0", 12, KIND_PRIVATE),
    ("192.168.0.0", 16, KIND_PRIVATE), ("224.0.0.0", 4, KIND_MULTICAST),
    ("255.255.255.255", 32, KIND_BROADCAST),
]
_V6_RANGES = [
    ("fc00::", 7, KIND_PRIVATE), ("fe80::", 10, KIND_LINK_LOCAL), ("ff00::", 8, KIND_MULTICAST),
]


def classify(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """KIND_* (int8) of every address."""
    hi, lo = _u64(hi), _u64(lo)
    out = np.zeros(hi.shape, dtype=np.int8)
    v4m = is_v4(hi, lo)
    v4 = (lo & _U32).astype(np.uint32)
    for net, plen, kind in _V4_RANGES:
        n = int(ipaddress.IPv4Address(net))
        m = np.uint32((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF)
        out[v4m & ((v4 & m) == np.uint32(n & int(m)))] = kind
    v6 = ~v4m
    top = (hi >> np.uint64(48)).astype(np.uint32)  # first 16 bits
    for net, plen, kind in _V6_RANGES:
        n = int(ipaddress.IPv6Address(net)) >> 112
        m = (0xFFFF << (16 - plen)) & 0xFFFF
        out[v6 & ((top & np.uint32(m)) == np.uint32(n & m))] = kind
    out[v6 & (hi == 0) & (lo == 1)] = KIND_LOOPBACK
    out[v6 & (hi == 0) & (lo == 0)] = KIND_UNSPECIFIED
    l2 = hi == _L2_HI
    if l2.any():
        group = ((lo >> np.uint64(40)) & np.uint64(1)) == np.uint64(1)  # I/G bit of the first octet
        out[l2] = KIND_LINK_LOCAL
        out[l2 & group] = KIND_MULTICAST
        out[l2 & (lo == np.uint64(0xFFFF_FFFF_FFFF))] = KIND_BROADCAST
    return out


def is_internal(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Not a global unicast address (private, loopback, link-local, multicast, broadcast...)."""
    return classify(hi, lo) != KIND_GLOBAL


def is_group(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Multicast, broadcast or unspecified: never a device, never a responder."""
    k = classify(hi, lo)
    return (k == KIND_MULTICAST) | (k == KIND_BROADCAST) | (k == KIND_UNSPECIFIED)


# --- hashing -------------------------------------------------------------------------------

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: fixed constants, so results are stable across runs and machines
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def hash_u64(*cols: np.ndarray) -> np.ndarray:
    """A deterministic 64-bit hash of several integer columns (row-wise)."""
    with np.errstate(over="ignore"):
        h = np.full(np.shape(cols[0]), np.uint64(0x243F6A8885A308D3), dtype=np.uint64)
        for c in cols:
            h = _mix(h ^ (np.asarray(c).astype(np.uint64) + _GOLD))
    return h
