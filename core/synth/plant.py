"""The simulated plant: its shape (zones, device counts, vendors, polling rates, day rhythm), its
hosts, and how a frame between two of them looks on the SPAN port of the core switch.

A `PlantShape` is the parameter set a scenario varies; a layout (core/synth/demo.py,
core/synth/mixed.py) turns it into hosts with addresses and MACs, and the traffic actors
(core/synth/traffic/) make them talk. Every random choice comes from a random.Random seeded with
the shape's seed and the name of whoever makes it, so a plant is reproducible byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.clock import DayRhythm

Record = tuple[int, bytes]
EXT = "ext"  # the network name of hosts on the internet, seen through the router


@dataclass(frozen=True)
class Zone:
    """One subnet: a /24 `prefix` ("10.20.20"), "it" or "ot", and the 802.1Q tag its frames carry
    on the SPAN port (None: captured untagged)."""

    name: str
    kind: str
    prefix: str
    vlan: int | None = None

    @property
    def cidr(self) -> str:
        return f"{self.prefix}.0/24"


# Vendors by OUI (all in Wireshark's manuf file).
OUIS: dict[str, tuple[str, ...]] = {
    "Dell": ("b8:ca:3a", "f8:b1:56", "d4:be:d9", "a4:bb:6d"),
    "HP": ("3c:d9:2b",),
    "Siemens": ("00:1b:1b", "00:0e:8c", "28:63:36"),
    "Schneider": ("00:80:f4",),
    "Rockwell": ("00:1d:9c",),
    "SEL": ("00:30:a7",),
    "ABB": ("00:21:c1",),
    "VMware": ("00:50:56",),
    "ASUSTek": ("04:d4:c4",),
    "Cisco": ("00:1e:49",),
}


@dataclass(frozen=True)
class PlantShape:
    """What a simulated plant is made of. Device kinds are layout vocabulary ("plc_s7",
    "plc_modbus", "workstation", "rtu_dnp3"...); `protocols` names the protocols of the two groups of
    field devices; `poll_s` maps a protocol to its poll period and
    `gap_s` an activity to the mean seconds between two of its interactions."""

    seed: int
    zones: tuple[Zone, ...]
    devices: Mapping[str, int] = field(default_factory=dict)
    vendors: Mapping[str, str] = field(default_factory=dict)    # device kind -> vendor (OUIS key)
    poll_s: Mapping[str, float] = field(default_factory=dict)
    # field protocols (core/synth/traffic/field_poll.py FIELD): of the controllers the SCADA server
    # polls, and of the field devices the HMI polls
    protocols: tuple[str, str] = ("s7", "modbus")
    gap_s: Mapping[str, float] = field(default_factory=dict)
    rhythm: DayRhythm = DayRhythm()
    domain: str = "plant.local"
    sites: tuple[tuple[str, str], ...] = ()   # external HTTPS services: (name, address)
    upstream_dns: str = "9.9.9.9"             # the domain controller's forwarder
    ntp_pool: str = "162.159.200.1"           # the domain controller's time source
    ca_name: str = "Simulated Public TLS CA"
    router_mac: str = "00:1e:49:3a:5c:01"      # the core switch (SVIs of every zone)
    # How a host's first source port and IP id derive from its address ("digest" or "address"),
    # and over how many ports they start: the two historic plants differ, and their bytes are kept.
    counters: str = "digest"
    port_span: int = 10000
    opaque_block: int = 4096                  # bytes of the block stand-in ciphertext is cut from
    opaque_wire_safe: bool = True             # no 0x03 / 0xFE bytes in it (see OpaqueBytes)

    def zone(self, name: str) -> Zone:
        return next(z for z in self.zones if z.name == name)

    def count(self, kind: str) -> int:
        return int(self.devices.get(kind, 0))


class Host:
    """A device: its name, addresses, zone (`net`), capture tag (`vlan`), vendor and role, and the
    counters of its source ports and IP ids."""

    __slots__ = ("name", "ip", "mac", "ipb", "macb", "net", "vlan", "vendor", "role", "ttl", "seq")

    def __init__(self, name: str, ip: str, mac: str, net: str, vlan: int | None, seq: f.HostCounters,
                 vendor: str = "", role: str = "", ttl: int = 128) -> None:
        self.name, self.ip, self.mac = name, ip, mac
        self.ipb, self.macb = f.ip_bytes(ip), f.mac_bytes(mac)
        self.net, self.vlan, self.seq = net, vlan, seq
        self.vendor, self.role, self.ttl = vendor, role, ttl

    def port(self) -> int:
        return self.seq.port()

    def ipid(self) -> int:
        return self.seq.ipid()

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.ip}, {self.mac}, {self.net})"


class OpaqueBytes:
    """Deterministic opaque bytes standing in for ciphertext and file data: slices of one block per
    seed. They look random to a reader but compress well, which keeps captures small."""

    # A "wire-safe" block has no 0x03 byte: tshark 4.0 hands RDP's TLS to TPKT, which would take a
    # segment starting 03 00 for a TPKT header and report a bogus COTP option; and no 0xFE: SMB 3
    # "ciphertext" starting FE 53 is dissected as a plain SMB2 header.
    _SAFE = bytes.maketrans(b"\x03\xfe", b"\x83\x7e")
    _blocks: dict[tuple[int, int, bool], bytes] = {}

    def __init__(self, seed: int, size: int, wire_safe: bool) -> None:
        key = (seed, size, wire_safe)
        if key not in OpaqueBytes._blocks:
            block = random.Random(f"{seed}:blob").randbytes(size)
            OpaqueBytes._blocks[key] = block.translate(self._SAFE) if wire_safe else block
        self.size = size
        self.block = OpaqueBytes._blocks[key]
        self._doubled = self.block * 2

    def pieces(self, rng: random.Random, n: int) -> bytes:
        """n bytes stitched from block-sized slices at random offsets."""
        parts = []
        while n > 0:
            o = rng.randrange(self.size)
            k = min(self.size, n)
            parts.append(self._doubled[o : o + k])
            n -= k
        return b"".join(parts)

    def slice(self, rng: random.Random, n: int) -> bytes:
        """n bytes in one slice at a random offset (the block repeated when n is large)."""
        if n <= self.size // 2:
            o = rng.randrange(self.size - n)
            return self.block[o : o + n]
        return (self.block * (n // self.size + 1))[:n]


class Plant:
    """Hosts of a PlantShape and the frames between them as the SPAN port sees them: a frame is
    captured with its sender's tag and goes to the router unless both ends share a zone."""

    def __init__(self, shape: PlantShape) -> None:
        self.shape = shape
        self._mac_rng = random.Random(f"{shape.seed}:plant")
        self.router_macb = f.mac_bytes(shape.router_mac)
        self.opaque = OpaqueBytes(shape.seed, shape.opaque_block, shape.opaque_wire_safe)
        self.internal: list[Host] = []
        self.by_ip: dict[str, Host] = {}
        self.ext: dict[str, Host] = {}
        self.routers: dict[str, Host] = {}  # zone name -> the router's interface in it
        self.boundaries: list[int] = []  # capture-file split times

    # ---- hosts

    def new_mac(self, oui: str) -> str:
        rng = self._mac_rng
        return oui + ":" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))

    def counters(self, ip: str) -> f.HostCounters:
        b = f.ip_bytes(ip)
        if self.shape.counters == "digest":
            return f.HostCounters(sum(b) * 257 + b[-1], port_span=self.shape.port_span)
        return f.HostCounters(int.from_bytes(b, "big"), port_span=self.shape.port_span)

    def host(self, name: str, ip: str, zone: Zone, mac: str, vendor: str = "", role: str = "",
             ttl: int = 128) -> Host:
        """A host in `zone` (not registered: `add` does that)."""
        return Host(name, ip, mac, zone.name, zone.vlan, self.counters(ip), vendor, role, ttl)

    def add(self, *hosts: Host) -> None:
        for h in hosts:
            self.internal.append(h)
            self.by_ip[h.ip] = h

    def external(self, ip: str, name: str = "") -> Host:
        h = self.ext.get(ip)
        if h is None:
            h = self.ext[ip] = Host(name or ip, ip, self.shape.router_mac, EXT, None, self.counters(ip),
                                    "", "external", ttl=52)
        return h

    # ---- capture files

    def boundary_in(self, a: int, b: int) -> int | None:
        """The first capture-file boundary in (a, b], if any."""
        for x in self.boundaries:
            if a < x <= b:
                return x
        return None

    def near_boundary(self, t: int, margin: int) -> bool:
        """True when a conversation starting at t could straddle a capture-file boundary."""
        return any(x - margin <= t < x for x in self.boundaries)

    # ---- frames

    def leg(self, a: Host, b: Host) -> f.Leg:
        """Frames a -> b as captured: with a's tag (b's when a is external), via the router when
        they are not in the same zone."""
        if a.net == EXT:
            return f.Leg(self.router_macb, b.macb, a.ipb, b.ipb, b.vlan, a.ttl)
        dst = b.macb if b.net == a.net else self.router_macb
        return f.Leg(a.macb, dst, a.ipb, b.ipb, a.vlan, a.ttl)

    def tcp(self, a: Host, b: Host, dport: int, rng: random.Random, win_server: int = 8192) -> f.TcpSession:
        return f.TcpSession(self.leg(a, b), self.leg(b, a), a.port(), dport,
                            isn_client=rng.getrandbits(32), isn_server=rng.getrandbits(32),
                            win_server=win_server, ip_id_client=a.ipid(), ip_id_server=b.ipid())

    def udp(self, ts: int, a: Host, b: Host, sport: int, dport: int, payload: bytes) -> Record:
        leg = self.leg(a, b)
        return ts, f.udp_frame(leg.src_mac, leg.dst_mac, leg.src_ip, leg.dst_ip, sport, dport, payload,
                               ip_id=a.ipid(), ttl=leg.ttl, vlan=leg.vlan)

    def broadcast_udp(self, ts: int, a: Host, dst_ip: str, sport: int, dport: int, payload: bytes) -> Record:
        return ts, f.udp_frame(a.macb, f.BROADCAST_MAC, a.ipb, f.ip_bytes(dst_ip), sport, dport, payload,
                               ip_id=a.ipid(), ttl=a.ttl, vlan=a.vlan)
