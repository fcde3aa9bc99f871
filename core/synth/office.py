"""The second benchmark plant, shaped unlike the first: an office-heavy site where most packets are
IT. Two hundred workstations browse (many short TLS sessions), look up thousands of distinct names
(CDN-style host names, several answers each, some NXDOMAIN), and are probed (refused and
unanswered connections); one small OT cell polls its PLCs and RTUs slowly. It reuses the mixed
plant's layout and actors (core/synth/mixed.py) with its own shape and a browsing DNS client, so
`mixed.generate` writes it and tests/test_bench_generator.py checks it against tshark the same way.
"""

from __future__ import annotations

from collections.abc import Iterator

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.actors import StreamActor
from plantwatch.core.synth.clock import US
from plantwatch.core.synth.mixed import SITES, MixedPlant
from plantwatch.core.synth.plant import PlantShape, Zone
from plantwatch.core.synth.traffic.it_stream import DnsClient

# Label pools for the looked-up names: 24 x 40 x 12 = 11,520 distinct names before the domains.
_HOSTS = ("img", "cdn", "static", "api", "edge", "assets", "media", "telemetry", "login", "sync",
          "update", "cache", "fonts", "ads", "track", "mail", "files", "video", "app", "web",
          "events", "beacon", "metrics", "content")
_DOMAINS = tuple(f"{w}{n}" for w in ("acme", "globex", "initech", "umbrella", "hooli", "vandelay",
                                     "stark", "wayne", "wonka", "tyrell") for n in ("", "cdn", "net", "io"))
_TLDS = ("example.com", "example.net", "example.org", "test", "invalid", "example",
         "example.co.uk", "example.de", "example.fr", "example.jp", "example.cn", "example.br")


def names() -> tuple[str, ...]:
    """The office's name space, in a fixed order (popular names first)."""
    return tuple(f"{h}.{d}.{t}" for t in _TLDS for d in _DOMAINS for h in _HOSTS)


def shape(seed: int) -> PlantShape:
    return PlantShape(
        seed=seed,
        zones=(Zone("it", "it", "10.30.10"), Zone("c1", "ot", "10.30.1", 30), Zone("c2", "ot", "10.30.2")),
        devices={"workstation": 200, "plc_s7": 4, "plc_enip": 2, "hmi": 2, "plc_modbus": 12,
                 "rtu_dnp3": 2, "rtu_iec104": 2},
        vendors={"server": "VMware", "plc_s7": "Siemens", "plc_enip": "Rockwell", "hmi": "Schneider",
                 "plc_modbus": "Schneider", "rtu_dnp3": "SEL", "rtu_iec104": "ABB"},
        poll_s={"modbus": 1.0, "s7": 1.0, "dnp3": 2.0, "enip": 2.0, "iec104": 1.0},
        gap_s={"smb": 300.0, "tls": 10.0, "dns": 0.25, "syslog": 0.5, "arp": 0.1, "refused": 0.006,
               "unanswered": 0.02},
        domain="office.local", sites=tuple((name, f"{40 + i}.{(i * 53) % 250 + 1}.{(i * 17) % 250 + 2}.{20 + i}")
                                           for i, name in enumerate(SITES)),
        ca_name="Office Public TLS CA", counters="address", port_span=28000, opaque_block=1 << 16,
        opaque_wire_safe=False)


class BrowsingDns(DnsClient):
    """A browsing workstation's lookups: a long tail of distinct names, one to four A answers,
    one lookup in twenty for a name that does not exist."""

    def interactions(self) -> Iterator[list]:
        rng, p = self.rng, self.p
        pool = p.names
        while True:
            self.t += self.gap(self.mean)
            name = pool[min(int(rng.paretovariate(0.35)) - 1, len(pool) - 1)]
            ident, sport = rng.randrange(65536), self.ws.port()
            if rng.random() < 0.05:
                name, answers, rcode = f"{name.split('.')[0]}-{rng.randrange(10**6)}.{name}", [], 3
            else:
                answers = [bytes([93, 184, rng.randrange(256), rng.randrange(1, 255)])
                           for _ in range(rng.randrange(1, 5))]
                rcode = 0
            yield [(*p.udp(self.t, self.ws, p.dc, sport, f.DNS_PORT, f.dns_query(ident, name)), "dns_query"),
                   (*p.udp(self.t + rng.randrange(300, 40_000) * US, p.dc, self.ws, f.DNS_PORT, sport,
                           f.dns_response(ident, name, answers, rcode=rcode)), "dns_response")]


def plant(seed: int) -> OfficePlant:
    return OfficePlant(shape(seed))


class OfficePlant(MixedPlant):
    def __init__(self, s: PlantShape) -> None:
        super().__init__(s)
        self.names = names()

    def normal_traffic(self) -> list[StreamActor]:
        dns = self.shape.gap_s["dns"]
        return [BrowsingDns(self, a.ws, dns) if type(a) is DnsClient else a
                for a in super().normal_traffic()]
