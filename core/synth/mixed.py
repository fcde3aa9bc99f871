"""The benchmark plant: an IT VLAN (workstations, servers, untagged on the SPAN), OT cell 1
(SCADA server, S7 and EtherNet/IP PLCs, captured 802.1Q-tagged VLAN 20) and OT cell 2 (HMIs,
Modbus devices, DNP3 outstations, IEC 104 RTUs, untagged), as endless streams merged in packet-time
order; `generate()` writes the first N packets. Rates are set so most packets are ICS polls and
bulk TCP (SMB-like file reads), as on a real plant.

`generate()` returns the statistics the file is claimed to have (packets per kind, tagged events,
802.1Q-tagged frames), which tests/test_bench_generator.py checks against tshark.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.actors import StreamActor, streams
from plantwatch.core.synth.clock import SEC
from plantwatch.core.synth.pcapwriter import PcapngWriter
from plantwatch.core.synth.plant import OUIS, Host, Plant, PlantShape, Zone
from plantwatch.core.synth.traffic.ics_stream import (
    Dnp3Poller,
    EnipDiscovery,
    EnipPoller,
    Iec104Link,
    ModbusPoller,
    S7Poller,
)
from plantwatch.core.synth.traffic.it_stream import (
    ArpTraffic,
    DnsClient,
    Prober,
    RdpOperator,
    SmbClient,
    Syslog,
    TlsBrowser,
)

T0 = 1_772_431_200 * SEC  # 2026-03-02 06:00:00 UTC

# The kinds of traffic, each identified on the wire by its ports (see KIND_PORTS): the test
# classifies tshark's output the same way and compares with the counts generate() returns.
KINDS = ("modbus", "s7", "dnp3", "iec104", "enip", "smb", "tls", "rdp", "dns", "udp", "arp",
         "failed")
KIND_PORTS: dict[str, tuple[int, ...]] = {
    "modbus": (502,), "s7": (102,), "dnp3": (20000,), "iec104": (2404,), "enip": (44818,),
    "smb": (445,), "tls": (443,), "rdp": (3389,), "dns": (53,), "udp": (123, 514),
    "failed": (22, 5900, 8080),  # ports nobody serves: refused or unanswered probes
}

SITES = ("outlook.office365.com", "login.microsoftonline.com", "teams.microsoft.com",
         "graph.microsoft.com", "www.sap.com", "plant-erp.eu10.hana.ondemand.com",
         "support.industry.siemens.com", "www.google.com", "update.googleapis.com",
         "ctldl.windowsupdate.com", "api.weather.example.net", "portal.supplier.example.com")
NAMES = SITES + ("dc01.plant.local", "fs01.plant.local", "hist01.plant.local", "wsus.plant.local",
                 "_ldap._tcp.dc._msdcs.plant.local", "wpad.plant.local", "time.windows.com")
USERS = ("jsmith", "mkowalski", "svc_backup", "operator1", "akumar")


def shape(seed: int) -> PlantShape:
    return PlantShape(
        seed=seed,
        zones=(Zone("it", "it", "10.10.10"), Zone("c1", "ot", "10.20.1", 20), Zone("c2", "ot", "10.20.2")),
        devices={"workstation": 60, "plc_s7": 24, "plc_enip": 12, "hmi": 2, "plc_modbus": 48,
                 "rtu_dnp3": 6, "rtu_iec104": 6},
        vendors={"server": "VMware", "plc_s7": "Siemens", "plc_enip": "Rockwell", "hmi": "Schneider",
                 "plc_modbus": "Schneider", "rtu_dnp3": "SEL", "rtu_iec104": "ABB"},
        poll_s={"modbus": 0.150, "s7": 0.100, "dnp3": 0.100, "enip": 0.250, "iec104": 0.04},  # iec104: mean gap of spontaneous reports
        gap_s={"smb": 20.0, "tls": 15.0, "dns": 2.0, "syslog": 0.05, "arp": 0.06, "refused": 0.15,
               "unanswered": 0.5},
        domain="plant.local", sites=tuple((name, f"{20 + i}.{(i * 37) % 250 + 1}.{(i * 91) % 250 + 2}.{10 + i}")
                   for i, name in enumerate(SITES)), ca_name="Bench Public TLS CA",
        counters="address", port_span=12000, opaque_block=1 << 16, opaque_wire_safe=False)


class MixedPlant(Plant):
    """Hosts at fixed offsets in each cell (workstations from .40, S7 PLCs from .100, ENIP from
    .150 in cell 1; HMIs from .10, Modbus from .100, DNP3 from .200, IEC 104 from .220 in cell 2)."""

    def __init__(self, s: PlantShape) -> None:
        super().__init__(s)
        self.t0 = T0
        it, c1, c2 = (s.zone(n) for n in ("it", "c1", "c2"))
        n = s.count
        room = {"workstation": 200, "plc_s7": 50, "plc_enip": 100, "hmi": 90, "plc_modbus": 100,
                "rtu_dnp3": 20, "rtu_iec104": 30}  # the address ranges of this layout (/24 cells)
        over = [k for k, most in room.items() if not 0 <= n(k) <= most]
        if over or n("hmi") < 1 or n("workstation") < 2:
            raise ValueError(f"the mixed plant cannot hold these device counts: {dict(s.devices)}")

        def oui(kind: str) -> str:
            return OUIS[s.vendors[kind]][0]

        H, mac = self.host, self.new_mac
        dell, hp, vm, siemens = OUIS["Dell"][0], OUIS["HP"][0], oui("server"), OUIS["Siemens"][0]

        def server(name: str, last: int) -> Host:
            return H(name, f"{it.prefix}.{last}", it, mac(vm))

        self.dc, self.fs, self.jump = server("DC01", 2), server("FS01", 3), server("JUMP01", 5)
        self.syslog, self.nms, self.intranet = server("LOG01", 6), server("NMS01", 7), server("WEB01", 8)
        self.ws = [H(f"PC{i + 1:03d}", f"{it.prefix}.{40 + i}", it, mac(dell if i % 3 else hp))
                   for i in range(n("workstation"))]
        self.scada = H("SCADA01", f"{c1.prefix}.10", c1, mac(siemens))
        self.hist = H("HIST01", f"{c1.prefix}.12", c1, mac(hp))
        self.plcs = [H(f"S7-{i + 1:02d}", f"{c1.prefix}.{100 + i}", c1, mac(oui("plc_s7")), ttl=30)
                     for i in range(n("plc_s7"))]
        self.enips = [H(f"CLX-{i + 1:02d}", f"{c1.prefix}.{150 + i}", c1, mac(oui("plc_enip")), ttl=64)
                      for i in range(n("plc_enip"))]
        self.hmis = [H(f"HMI{i + 1:02d}", f"{c2.prefix}.{10 + i}", c2, mac(oui("hmi")), ttl=64)
                     for i in range(n("hmi"))]
        self.mbs = [H(f"MB-{i + 1:02d}", f"{c2.prefix}.{100 + i}", c2, mac(oui("plc_modbus")), ttl=64)
                    for i in range(n("plc_modbus"))]
        self.dnps = [H(f"RTU-D{i + 1}", f"{c2.prefix}.{200 + i}", c2, mac(oui("rtu_dnp3")), ttl=64)
                     for i in range(n("rtu_dnp3"))]
        self.iecs = [H(f"RTU-I{i + 1}", f"{c2.prefix}.{220 + i}", c2, mac(oui("rtu_iec104")), ttl=64)
                     for i in range(n("rtu_iec104"))]
        self.sites = [self.external(addr, name) for name, addr in s.sites]
        self.names = tuple(name for name, _ in s.sites) + NAMES[len(SITES):]
        self.add(self.dc, self.fs, self.jump, self.syslog, self.nms, self.intranet, *self.ws, self.scada,
                 self.hist, *self.plcs, *self.enips, *self.hmis, *self.mbs, *self.dnps, *self.iecs)
        self.gone = H("OLD-PLC", f"{c2.prefix}.250", c2, mac(oui("plc_modbus")))  # decommissioned
        seed = s.seed
        ca = f.make_certificate(s.ca_name, seed=seed * 100 + 99, org="Bench Trust Services")
        self.chains = {h.name: [f.make_certificate(h.name, seed=seed * 100 + i, issuer_cn=s.ca_name,
                                                   issuer_seed=seed * 100 + 99, san=(h.name,)), ca]
                       for i, h in enumerate(self.sites)}
        self.chains["intranet.plant.local"] = [
            f.make_certificate("intranet.plant.local", seed=seed * 100 + 50)]
        self.rdp_cert = [f.make_certificate("JUMP01.plant.local", seed=seed * 100 + 51)]

    def normal_traffic(self) -> list[StreamActor]:
        p, poll, gap = self, self.shape.poll_s, self.shape.gap_s

        def ms(proto: str) -> int:
            return round(poll[proto] * 1000)

        out: list[StreamActor] = []
        out += [ModbusPoller(p, p.hmis[i % len(p.hmis)], d, ms("modbus")) for i, d in enumerate(p.mbs)]
        out += [S7Poller(p, plc, ms("s7")) for plc in p.plcs]
        out += [Dnp3Poller(p, rtu, 10 + i, ms("dnp3")) for i, rtu in enumerate(p.dnps)]
        out += [Iec104Link(p, rtu, 1 + i, poll["iec104"]) for i, rtu in enumerate(p.iecs)]
        out += [EnipPoller(p, plc, ms("enip")) for plc in p.enips]
        out += [EnipDiscovery(p)]
        out += [SmbClient(p, ws, gap["smb"]) for ws in p.ws]
        out += [TlsBrowser(p, ws, gap["tls"]) for ws in p.ws]
        out += [RdpOperator(p, p.jump, [p.dc, p.fs, p.hist], "svc_backup"),
                RdpOperator(p, p.ws[0], [p.jump], USERS[0]),
                RdpOperator(p, p.ws[1], [p.jump, p.dc], USERS[1])]
        out += [DnsClient(p, ws, gap["dns"]) for ws in p.ws]
        out += [Syslog(p, gap["syslog"]), ArpTraffic(p, gap["arp"]), Prober(p, False, gap["refused"]),
                Prober(p, True, gap["unanswered"])]
        return out


def records(packets: int, seed: int, plant: Callable[[int], MixedPlant] | None = None
            ) -> Iterator[tuple[int, bytes, str, str | None]]:
    """The first `packets` records of the plant, in time order: (ts_ns, frame, kind, tag).
    `plant(seed)` builds another plant on this layout (core/synth/office.py)."""
    p = plant(seed) if plant is not None else MixedPlant(shape(seed))
    return streams(p.normal_traffic(), packets)


def generate(path: str | Path, packets: int, seed: int,
             plant: Callable[[int], MixedPlant] | None = None) -> dict:
    """Write the capture to `path` (pcapng); return what it holds (see module docstring)."""
    kinds: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    vlan = 0
    nbytes = 0
    first = last = 0
    t0 = time.perf_counter()
    with PcapngWriter(path) as w:
        write = w.write
        for ts, frame, kind, tag in records(packets, seed, plant):
            write(ts, frame)
            kinds[kind] += 1
            if tag is not None:
                tags[tag] += 1
            if frame[12] == 0x81 and frame[13] == 0:
                vlan += 1
            nbytes += len(frame)
            if not first:
                first = ts
            last = ts
        count = w.count
    return {
        "seed": seed, "packets": count, "bytes": nbytes,
        "first_ts_ns": first, "last_ts_ns": last, "vlan_tagged": vlan,
        "kinds": {k: kinds[k] for k in KINDS}, "tags": dict(sorted(tags.items())),
        "generate_s": round(time.perf_counter() - t0, 2),
    }
