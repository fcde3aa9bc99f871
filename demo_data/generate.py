"""Generate the demo plant captures: a food-processing plant's "Computing" (IT) and "Industrial"
(OT) VLANs seen from a SPAN port on the core switch, with the seed incident replayed on top.

    python demo_data/generate.py                     # the shipped files, into demo_data/
    python demo_data/generate.py --no-attack --learn-days 1 --out-dir /tmp/x

Output is byte-for-byte reproducible from --seed and the options: every random choice comes from a
random.Random seeded with the seed and the name of the actor that makes it, and the capture files
are written with deterministic gzip (core/synth/pcapwriter.py).

The timeline is simulated hour by hour: each actor (a poller, a workstation, the attacker...) emits
the records of the interactions that start in the hour into a heap, and every record older than the
end of the hour is written out, so memory stays bounded however long the capture.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import itertools
import json
import math
import random
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.pcapwriter import PcapngWriter

SEC = 1_000_000_000
MINUTE = 60 * SEC
HOUR = 60 * MINUTE
DAY = 24 * HOUR
START = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)  # a Monday; plant time is UTC

Record = tuple[int, bytes]


def ns(t: dt.datetime) -> int:
    return int(t.timestamp()) * SEC


def iso(t_ns: int) -> str:
    return dt.datetime.fromtimestamp(t_ns / SEC, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Config:
    seed: int = 7
    learn_days: int = 2
    plcs: int = 4             # Siemens S7 PLCs polled by the WinCC server
    modbus_devices: int = 3   # Schneider Modbus/TCP devices polled by the HMI
    workstations: int = 12
    attack: bool = True
    poll_s: float = 15.0      # SCADA poll period in the capture (thinned from ~1-2 s)
    out_dir: Path = Path(__file__).resolve().parent
    learn_name: str = "learn.pcapng.gz"
    incident_name: str = "incident.pcapng.gz"
    ground_truth_name: str = "ground_truth.json"
    incident_hours: float = 34.0  # incident capture: the attack day and the next morning


# --------------------------------------------------------------------------- the plant


@dataclass
class Host:
    name: str
    ip: str
    mac: str
    vlan: int | None        # None: external (seen through the router)
    vendor: str
    role: str
    ttl: int = 128
    ipb: bytes = b""
    macb: bytes = b""
    seq: f.HostCounters = field(init=False, repr=False)  # its source ports and IP ids

    def __post_init__(self) -> None:
        self.ipb = f.ip_bytes(self.ip)
        self.macb = f.mac_bytes(self.mac)
        self.seq = f.HostCounters(sum(self.ipb) * 257 + self.ipb[-1], port_span=10000)

    def port(self) -> int:
        return self.seq.port()

    def ipid(self) -> int:
        return self.seq.ipid()


ROUTER_MAC = "00:1e:49:3a:5c:01"  # Cisco core switch (SVIs for both VLANs)
VLAN_IT, VLAN_OT = 10, 20
NET_IT, NET_OT = "10.10.10", "10.20.20"

# Vendors by OUI (all in Wireshark's manuf file).
DELL = ("b8:ca:3a", "f8:b1:56", "d4:be:d9", "a4:bb:6d")
HP = ("3c:d9:2b",)
SIEMENS = ("00:1b:1b", "00:0e:8c", "28:63:36")
SCHNEIDER = "00:80:f4"
ATTACKER_OUI = "04:d4:c4"  # ASUSTek laptop: a vendor the plant never had

WS_NAMES = ("FIN-PC01", "HR-PC02", "QA-PC03", "PLAN-PC04", "LAB-PC05", "MAINT-PC06", "PROD-PC07",
            "LOG-PC08", "SALES-PC09", "MGMT-PC10", "PURCH-PC11", "QA-PC12")

SAAS = (  # (name, address): HTTPS with SNI from the office
    ("outlook.office365.com", "52.97.146.178"), ("login.microsoftonline.com", "20.190.159.4"),
    ("teams.microsoft.com", "52.113.194.132"), ("graph.microsoft.com", "20.190.151.7"),
    ("settings-win.data.microsoft.com", "20.42.65.92"), ("ctldl.windowsupdate.com", "93.184.221.240"),
    ("www.sap.com", "104.90.24.38"), ("plant-erp.eu10.hana.ondemand.com", "3.121.100.67"),
    ("www.google.com", "142.250.185.100"), ("support.industry.siemens.com", "23.57.112.17"),
)
UPSTREAM_DNS = "9.9.9.9"
NTP_POOL = "162.159.200.1"

CA_NAME = "Demo Public TLS CA 1"


class Plant:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        rng = random.Random(f"{cfg.seed}:plant")

        def mac(oui: str) -> str:
            return oui + ":" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))

        H = Host
        # Fixed addresses of the named hosts; the PLCs, Modbus devices and workstations take the
        # free ones from .21 up, so the default plant has PLCs at .21-.24 and Modbus at .41-.43.
        it_free = (i for i in range(21, 255) if i not in (157,))
        ot_free = (i for i in range(21, 255) if i not in (30, 50))
        plc_ips = [next(ot_free) for _ in range(cfg.plcs)]
        if cfg.plcs <= 20:
            ot_free = (i for i in range(41, 255) if i not in (50,) and i not in plc_ips)
        mb_ips = [next(ot_free) for _ in range(cfg.modbus_devices)]
        ws_ips = [next(it_free) for _ in range(cfg.workstations)]
        self.dc = H("DC01", f"{NET_IT}.2", mac(DELL[0]), VLAN_IT, "Dell", "domain controller")
        self.fs = H("FS01", f"{NET_IT}.3", mac(HP[0]), VLAN_IT, "HP", "file server")
        self.jump = H("ITADM01", f"{NET_IT}.5", mac(DELL[1]), VLAN_IT, "Dell", "IT admin jump host")
        self.ws = [H(WS_NAMES[i % len(WS_NAMES)] if i < len(WS_NAMES) else f"PC{i + 1:03d}",
                     f"{NET_IT}.{ws_ips[i]}", mac(DELL[i % 3] if i % 4 else HP[0]), VLAN_IT,
                     "HP" if i % 4 == 0 else "Dell", "workstation")
                   for i in range(cfg.workstations)]
        self.wincc = H("WINCC01", f"{NET_OT}.10", mac(SIEMENS[2]), VLAN_OT, "Siemens",
                       "SCADA server (WinCC)")
        self.hist = H("HIST01", f"{NET_OT}.12", mac(HP[0]), VLAN_OT, "HP", "historian")
        self.hmi = H("HMI01", f"{NET_OT}.30", mac(SCHNEIDER), VLAN_OT, "Schneider", "HMI panel", ttl=64)
        self.ews = H("EWS01", f"{NET_OT}.50", mac(DELL[3]), VLAN_OT, "Dell", "engineering workstation")
        self.plcs = [H(f"PLC-{i + 1:02d}", f"{NET_OT}.{plc_ips[i]}", mac(SIEMENS[i % 2]), VLAN_OT,
                       "Siemens", "PLC (S7)", ttl=30) for i in range(cfg.plcs)]
        self.mb = [H(f"MB-{i + 1:02d}", f"{NET_OT}.{mb_ips[i]}", mac(SCHNEIDER), VLAN_OT, "Schneider",
                     "PLC (Modbus)" if i % 3 != 2 else "power meter (Modbus)", ttl=64)
                   for i in range(cfg.modbus_devices)]
        self.router_it = H("CORE-SW", f"{NET_IT}.1", ROUTER_MAC, VLAN_IT, "Cisco", "router", ttl=255)
        self.router_ot = H("CORE-SW", f"{NET_OT}.1", ROUTER_MAC, VLAN_OT, "Cisco", "router", ttl=255)
        self.attacker = H("DESKTOP-4H7KQ2P", f"{NET_IT}.157", mac(ATTACKER_OUI), VLAN_IT, "ASUSTek",
                          "new device (attacker)")
        self.ext: dict[str, Host] = {}
        self.internal = [self.dc, self.fs, self.jump, *self.ws, self.wincc, self.hist, self.hmi,
                         self.ews, *self.plcs, *self.mb]
        self.by_ip = {h.ip: h for h in self.internal}
        self.boundaries: list[int] = []  # capture-file split times

    def boundary_in(self, a: int, b: int) -> int | None:
        """The first capture-file boundary in (a, b], if any."""
        for x in self.boundaries:
            if a < x <= b:
                return x
        return None

    def near_boundary(self, t: int, margin: int = 10 * MINUTE) -> bool:
        """True when a conversation starting at t could straddle a capture-file boundary."""
        return any(x - margin <= t < x for x in self.boundaries)

    def external(self, ip: str, name: str = "") -> Host:
        h = self.ext.get(ip)
        if h is None:
            h = self.ext[ip] = Host(name or ip, ip, ROUTER_MAC, None, "", "external", ttl=52)
        return h

    def leg(self, a: Host, b: Host) -> f.Leg:
        """Frames a -> b as captured: on a's VLAN (b's when a is external), via the router when
        they are not on the same VLAN."""
        if a.vlan is None:
            return f.Leg(f.mac_bytes(ROUTER_MAC), b.macb, a.ipb, b.ipb, b.vlan, a.ttl)
        dst = b.macb if b.vlan == a.vlan else f.mac_bytes(ROUTER_MAC)
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


# --------------------------------------------------------------------------- shared helpers


class Blob:
    """Deterministic opaque bytes standing in for ciphertext and file data: slices of one 4 KiB block shared by
    every actor. They look random to a reader but gzip well, which keeps the captures small."""

    SIZE = 4096
    _blocks: dict[int, bytes] = {}
    # No 0x03 byte: tshark 4.0 hands RDP's TLS to TPKT, which would take a segment starting 03 00
    # for a TPKT header and report a bogus COTP option. No 0xFE: SMB 3 "ciphertext" starting FE 53
    # is dissected as a plain SMB2 header.
    _NO_03 = bytes.maketrans(b"\x03\xfe", b"\x83\x7e")

    def __init__(self, rng: random.Random, seed: int) -> None:
        if seed not in Blob._blocks:
            block = random.Random(f"{seed}:blob").randbytes(self.SIZE).translate(self._NO_03)
            Blob._blocks[seed] = block * 2
        self.block = Blob._blocks[seed]
        self.rng = rng

    def take(self, n: int) -> bytes:
        parts = []
        while n > 0:
            o = self.rng.randrange(self.SIZE)
            k = min(self.SIZE, n)
            parts.append(self.block[o : o + k])
            n -= k
        return b"".join(parts)


def office_hours(t: int) -> bool:
    d = dt.datetime.fromtimestamp(t / SEC, dt.UTC)
    return d.weekday() < 5 and 7.5 <= d.hour + d.minute / 60 < 17.5


def hour_of(t: int) -> float:
    return (t % DAY) / HOUR


def tls_conversation(p: Plant, rng: random.Random, blob: Blob, ts: int, client: Host, server: Host,
                     port: int, sni: str | None, chain: list[bytes], up: int, down: int,
                     ciphers: tuple[int, ...] = f.TLS_CIPHERS_BROWSER, rtt: int = 20_000_000) -> list[Record]:
    """A whole TLS 1.2 connection: handshake, `up`/`down` bytes of application data, FIN close."""
    s = p.tcp(client, server, port, rng, win_server=65535)
    out = s.handshake(ts, rtt)
    t = out[-1][0] + 1_000_000
    out += s.send(t, f.tls_client_hello(rng.randbytes(32), sni=sni, ciphers=ciphers,
                                        alpn=("h2", "http/1.1") if sni else ()))
    t += rtt
    out += s.send(t, f.tls_server_flight(rng.randbytes(32), chain, session_id=rng.randbytes(32)), False)
    t = out[-1][0] + 2_000_000
    out += s.send(t, f.tls_client_finish(b"\x04" + rng.randbytes(64), blob.take(40)))
    t += rtt
    out += s.send(t, f.tls_server_finish(blob.take(40)), False)
    t = out[-1][0] + 1_000_000
    if up:
        out += s.send(t, f.tls_app_data(blob.take(up)))
        t = out[-1][0] + rtt
    if down:
        out += s.send(t, f.tls_app_data(blob.take(down)), False)
        t = out[-1][0] + 1_000_000
    out += s.ack(t)
    out += s.close(t + rng.randrange(50, 3000) * 1_000_000, from_client=True, rtt=rtt)
    return out


def rdp_data(ciphertext: bytes) -> bytes:
    """TLS records sized to fill one TCP segment each (1455 + 5 = MSS), so every segment on 3389
    starts with a record header: tshark 4.0 gives RDP's TLS to TPKT, which would otherwise take a
    segment starting inside a record header (03 03 ...) for a TPKT header."""
    return f.tls_app_data(ciphertext, max_record=1455)


def chain_for(name: str, seed: int) -> list[bytes]:
    k = sum(name.encode()) % 1000
    leaf = f.make_certificate(name, seed=seed * 1000 + k, issuer_cn=CA_NAME, issuer_seed=seed * 1000 + 999,
                              san=(name,))
    ca = f.make_certificate(CA_NAME, seed=seed * 1000 + 999, org="Demo Trust Services")
    return [leaf, ca]


# --------------------------------------------------------------------------- actors


class Actor:
    """Something on the network that acts on its own schedule."""

    name = "actor"

    def __init__(self, p: Plant, cfg: Config, key: str) -> None:
        self.p = p
        self.cfg = cfg
        self.rng = random.Random(f"{cfg.seed}:{key}")
        self.blob = Blob(random.Random(f"{cfg.seed}:{key}:blob"), cfg.seed)

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        """Records of the interactions that start in [t0, t1)."""
        return ()


class Poller(Actor):
    """A SCADA client polling one device over a long-lived TCP connection every `poll_s`.

    So that each capture file is self-contained (tshark flags a connection that starts mid-stream),
    the connection is closed just before a capture-file boundary and reopened just after it.
    """

    def __init__(self, p: Plant, cfg: Config, key: str, start: int) -> None:
        super().__init__(p, cfg, key)
        self.next = start + self.rng.randrange(SEC)
        self.last = start - DAY
        self.s: f.TcpSession | None = None

    def open(self, t: int) -> list[Record]:
        raise NotImplementedError

    def poll(self, t: int) -> list[Record]:
        raise NotImplementedError

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        out: list[Record] = []
        period = int(self.cfg.poll_s * SEC)
        while self.next < t1:
            t = self.next
            b = self.p.boundary_in(self.last, t + 5 * SEC)
            if b is not None:
                if self.s is not None:
                    out += self.s.close(b - 2 * SEC)
                    self.s = None
                self.last = b
                self.next = max(t, b + self.rng.randrange(1, 3) * SEC)
                continue
            if self.s is None:
                out += self.open(t)
                t = out[-1][0] + 50_000_000
            out += self.poll(t)
            self.last = t
            self.next += period + self.rng.randrange(-50, 50) * 1_000_000
        return out


class S7Poller(Poller):
    """WinCC reading process values and status from one S7 PLC."""

    def __init__(self, p: Plant, cfg: Config, plc: Host, start: int) -> None:
        super().__init__(p, cfg, f"s7poll:{plc.ip}", start)
        self.plc = plc
        self.pdu = 0
        self.base = [self.rng.uniform(2, 90) for _ in range(4)]

    def open(self, t: int) -> list[Record]:
        self.s = s = self.p.tcp(self.p.wincc, self.plc, f.S7_PORT, self.rng)
        out = s.handshake(t, 300_000)
        out += s.exchange(out[-1][0] + 1_000_000, f.cotp_cr(src_ref=0x0005), f.cotp_cc(5, 0x4431))
        out += s.exchange(out[-1][0] + 4_000_000, f.s7_setup_comm(0xFF00), f.s7_setup_comm_ack(0xFF00))
        return out

    def poll(self, t: int) -> list[Record]:
        assert self.s is not None
        self.pdu = (self.pdu + 1) & 0xFFFF
        day = math.sin(2 * math.pi * hour_of(t) / 24)
        vals = b"".join(struct.pack("!f", b + 2.5 * day + self.rng.gauss(0, 0.3)) for b in self.base)
        status = struct.pack("!HH", 0x0101, self.rng.randrange(1000))
        return self.s.exchange(
            t, f.s7_read_var(self.pdu, [(f.S7_AREA_DB, 10, 0, 16), (f.S7_AREA_DB, 20, 0, 4)]),
            f.s7_read_var_ack(self.pdu, [vals, status]), rtt=self.rng.randrange(2_000_000, 6_000_000))


class ModbusPoller(Poller):
    """The HMI polling holding and input registers of one Modbus device."""

    def __init__(self, p: Plant, cfg: Config, dev: Host, start: int) -> None:
        super().__init__(p, cfg, f"mbpoll:{dev.ip}", start)
        self.dev = dev
        self.trans = self.rng.randrange(1000)
        self.regs = [self.rng.randrange(200, 3000) for _ in range(10)]

    def open(self, t: int) -> list[Record]:
        self.s = self.p.tcp(self.p.hmi, self.dev, f.MODBUS_PORT, self.rng)
        return self.s.handshake(t, 300_000)

    def poll(self, t: int) -> list[Record]:
        assert self.s is not None
        self.trans = (self.trans + 1) & 0xFFFF
        self.regs = [max(0, r + self.rng.randrange(-5, 6)) for r in self.regs]
        if self.trans % 2:
            req, resp = f.mb_read_req(3, 0, 10), f.mb_read_regs_resp(3, self.regs)
        else:
            req, resp = f.mb_read_req(4, 100, 4), f.mb_read_regs_resp(4, self.regs[:4])
        return self.s.exchange(t, f.modbus(self.trans, 1, req), f.modbus(self.trans, 1, resp),
                               rtt=self.rng.randrange(1_000_000, 4_000_000))


def s7_connect(p: Plant, rng: random.Random, t: int, client: Host, plc: Host) -> tuple[f.TcpSession, list[Record]]:
    s = p.tcp(client, plc, f.S7_PORT, rng)
    out = s.handshake(t, 400_000)
    out += s.exchange(out[-1][0] + 1_000_000, f.cotp_cr(src_ref=rng.randrange(1, 0x7FFF)), f.cotp_cc(1, 0x4432))
    out += s.exchange(out[-1][0] + 2_000_000, f.s7_setup_comm(0), f.s7_setup_comm_ack(0))
    return s, out


SZL_MODE = [struct.pack("!HHBBBB", 0x0000, 0x5100, 0x00, 0x08, 0x00, 0x00) + bytes(14)]
SZL_COMPONENTS = [struct.pack("!H", i) + name.ljust(32, b"\x00") for i, name in
                  ((1, b"Line-3 Pasteuriser"), (2, b"CPU 1516-3 PN/DP"), (3, b"Food Plant"))]


class EngineeringWorkstation(Actor):
    """EWS01: online diagnostics of the PLCs in office hours, and one planned download."""

    def __init__(self, p: Plant, cfg: Config, maintenance: int | None) -> None:
        super().__init__(p, cfg, "ews")
        self.maintenance = maintenance
        self.pdu = 0

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        out: list[Record] = []
        p, rng = self.p, self.rng
        if office_hours(t0) and p.plcs and rng.random() < 0.35:
            t = t0 + rng.randrange(HOUR - 10 * MINUTE)
            plc = rng.choice(p.plcs)
            s, rec = s7_connect(p, rng, t, p.ews, plc)
            out += rec
            t = rec[-1][0] + SEC
            for szl, idx, ent in ((0x0011, 0, f.szl_0011_entries("6ES7 516-3AN01-0AB0", fw=(2, 8))),
                                  (0x0424, 0, SZL_MODE)):
                self.pdu += 1
                out += s.exchange(t, f.s7_szl_read(self.pdu, szl, idx), f.s7_szl_response(self.pdu, szl, idx, ent))
                t = out[-1][0] + rng.randrange(1, 4) * SEC
            for _ in range(rng.randrange(3, 12)):
                self.pdu += 1
                out += s.exchange(t, f.s7_read_var(self.pdu, [(f.S7_AREA_DB, 10, 0, 16)]),
                                  f.s7_read_var_ack(self.pdu, [rng.randbytes(16)]))
                t = out[-1][0] + rng.randrange(2, 20) * SEC
            out += s.close(t)
        if self.maintenance is not None and t0 <= self.maintenance < t1 and p.plcs:
            out += self._download(self.maintenance, p.plcs[0])
        return out

    def _download(self, t: int, plc: Host) -> list[Record]:
        """Planned change in a maintenance window: stop, download FC12, activate, restart."""
        p, rng = self.p, self.rng
        s, out = s7_connect(p, rng, t, p.ews, plc)
        t = out[-1][0] + 2 * SEC
        steps = [
            (f.s7_szl_read(1, 0x0424), f.s7_szl_response(1, 0x0424, 0, SZL_MODE)),
            (f.s7_plc_stop(2), f.s7_plc_stop_ack(2)),
            (f.s7_request_download(3, "FC", 12, 1402, 1226), f.s7_request_download_ack(3)),
            (f.s7_pi_service(4, "_INSE", b"\x01\x00" + f.s7_block_name("FC", 12) + b"P"), f.s7_pi_ack(4)),
            (f.s7_pi_service(5, "P_PROGRAM"), f.s7_pi_ack(5)),
        ]
        for req, resp in steps:
            out += s.exchange(t, req, resp, rtt=rng.randrange(5, 40) * 1_000_000)
            t = out[-1][0] + rng.randrange(3, 30) * SEC
        out += s.close(t)
        return out


class WindowsHost(Actor):
    """DNS and NTP to the domain controller; NetBIOS name queries; daily DHCP renewal for
    the DHCP clients; the office user's SaaS, file share and directory traffic."""

    def __init__(self, p: Plant, cfg: Config, host: Host, office_user: bool, dhcp: bool) -> None:
        super().__init__(p, cfg, f"win:{host.ip}")
        self.h = host
        self.office_user = office_user
        self.dhcp = dhcp
        self.dns_id = self.rng.randrange(65536)
        self.arrive = self.rng.uniform(7.4, 8.6)
        self.leave = self.rng.uniform(16.3, 17.6)
        self.ntp_offset = self.rng.randrange(HOUR)
        self.smb_guid = self.rng.randbytes(16)

    def _dns(self, t: int, name: str, addr: str, upstream: bool) -> list[Record]:
        p, h, rng = self.p, self.h, self.rng
        self.dns_id = (self.dns_id + 1) & 0xFFFF
        sport = h.port()
        out = [p.udp(t, h, p.dc, sport, 53, f.dns_query(self.dns_id, name))]
        t2 = t + rng.randrange(200_000, 900_000)
        if upstream:
            up = p.external(UPSTREAM_DNS)
            qid = rng.randrange(65536)
            uport = p.dc.port()
            out.append(p.udp(t2, p.dc, up, uport, 53, f.dns_query(qid, name)))
            t2 += rng.randrange(8, 30) * 1_000_000
            out.append(p.udp(t2, up, p.dc, 53, uport, f.dns_response(qid, name, [addr], ttl=300)))
            t2 += 300_000
        out.append(p.udp(t2, p.dc, h, 53, sport, f.dns_response(self.dns_id, name, [addr], ttl=300)))
        return out

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        p, h, rng = self.p, self.h, self.rng
        out: list[Record] = []
        hr = hour_of(t0)
        day_start = t0 - t0 % DAY
        present = office_hours(t0) or not self.office_user
        t_ntp = t0 + self.ntp_offset
        out.append(p.udp(t_ntp, h, p.dc, 123, 123, f.ntp(t_ntp)))
        out.append(p.udp(t_ntp + 400_000, p.dc, h, 123, 123, f.ntp(t_ntp + 400_000, server=True, origin_ns=t_ntp)))
        weekday = dt.datetime.fromtimestamp(t0 / SEC, dt.UTC).weekday() < 5
        if self.dhcp and int(hr) == int(self.arrive) and weekday:  # the PC boots: DHCP renew, NetBIOS
            t = day_start + int(self.arrive * HOUR)
            xid = rng.getrandbits(32)
            out.append(p.udp(t, h, p.dc, 68, 67, f.dhcp(f.DHCP_REQUEST, xid, h.macb, client_ip=h.ipb, hostname=h.name)))
            out.append(p.udp(t + 2_000_000, p.dc, h, 67, 68, f.dhcp(
                f.DHCP_ACK, xid, h.macb, client_ip=h.ipb, your_ip=h.ipb, server_id=p.dc.ipb, lease=8 * 86400,
                subnet_mask="255.255.255.0", router=p.router_it.ipb, dns=p.dc.ipb, domain="corp.foodplant.local")))
            nb_id = rng.randrange(65536)
            out.append(p.broadcast_udp(t + 3 * SEC, h, f"{NET_IT}.255", 137, 137, f.nbns_query(nb_id, "FS01")))
            out.append(p.udp(t + 3 * SEC + 700_000, p.fs, h, 137, 137, f.nbns_response(nb_id, "FS01", p.fs.ipb)))
        # internal name lookups (every Windows host, day and night)
        for _ in range(rng.randrange(1, 4)):
            t = t0 + rng.randrange(HOUR)
            target = rng.choice([p.dc, p.fs, p.wincc, p.hist, p.ews] if h.vlan == VLAN_OT
                                else [p.dc, p.fs, p.jump])
            out += self._dns(t, f"{target.name.lower()}.corp.foodplant.local", target.ip, False)
        if not self.office_user:
            return out
        if not present:
            t = t0 + rng.randrange(HOUR - MINUTE)
            if rng.random() < 0.3 and not p.near_boundary(t):  # a PC left on: Windows checks in at night
                name, addr = SAAS[4]
                out += self._dns(t, name, addr, True)
                out += tls_conversation(p, rng, self.blob, t + 30_000_000, h, p.external(addr, name), 443,
                                        name, chain_for(name, self.cfg.seed), 900, 2500)
            return out
        # office hours: SaaS over HTTPS with SNI
        for _ in range(rng.randrange(3, 8)):
            t = t0 + rng.randrange(HOUR - MINUTE)
            name, addr = rng.choice(SAAS)
            out += self._dns(t, name, addr, rng.random() < 0.2)
            out += tls_conversation(p, rng, self.blob, t + 30_000_000, h, p.external(addr, name), 443, name,
                                    chain_for(name, self.cfg.seed), rng.randrange(600, 3000),
                                    rng.randrange(1000, 12000))
        # directory (LDAPS) and file share (SMB2 reads)
        for _ in range(rng.randrange(1, 3)):
            t = t0 + rng.randrange(HOUR - MINUTE)
            out += tls_conversation(p, rng, self.blob, t, h, p.dc, 636, "dc01.corp.foodplant.local",
                                    chain_for("dc01.corp.foodplant.local", self.cfg.seed), 400, 1200,
                                    rtt=400_000)
        if rng.random() < 0.7:
            t = t0 + rng.randrange(HOUR - 5 * MINUTE)
            s = p.tcp(h, p.fs, f.SMB_PORT, rng, win_server=65535)
            o = s.handshake(t)
            o += s.exchange(o[-1][0] + 500_000, f.smb2_negotiate(0, self.smb_guid),
                            f.smb2_negotiate_resp(0, b"FS01-GUID-000001", system_time_ns=t), rtt=700_000)
            sid = 0x0000400000000000 | rng.getrandbits(32)
            fid = rng.randbytes(16)
            tt = o[-1][0] + 5_000_000
            for mid in range(1, rng.randrange(3, 9)):  # reads of an open document
                n = rng.randrange(512, 8192)
                o += s.exchange(tt, f.smb2_read(mid, sid, 5, fid, (mid - 1) * 8192, n),
                                f.smb2_read_resp(mid, sid, 5, self.blob.take(n)), rtt=900_000)
                tt = o[-1][0] + rng.randrange(1, 60) * SEC
            o += s.close(tt)
            out += o
        return out


class JumpHost(Actor):
    """IT admin: RDP as a domain admin to the servers on weekday mornings (normal for this plant)."""

    USER = "adm-mkeller"

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        p, rng = self.p, self.rng
        d = dt.datetime.fromtimestamp(t0 / SEC, dt.UTC)
        if d.weekday() >= 5 or d.hour != 8:
            return ()
        out: list[Record] = []
        t = t0 + rng.randrange(5, 20) * MINUTE
        for target in (p.dc, p.fs, p.wincc):
            qid, sport = rng.randrange(65536), p.jump.port()
            name = f"{target.name.lower()}.corp.foodplant.local"
            o = [p.udp(t - 40_000_000, p.jump, p.dc, sport, 53, f.dns_query(qid, name)),
                 p.udp(t - 39_500_000, p.dc, p.jump, 53, sport, f.dns_response(qid, name, [target.ip], ttl=1200))]
            s = p.tcp(p.jump, target, f.RDP_PORT, rng, win_server=65535)
            o += s.handshake(t)
            o += s.exchange(o[-1][0] + 500_000, f.rdp_connection_request(self.USER), f.rdp_connection_confirm())
            tt = o[-1][0] + 2_000_000
            o += s.exchange(tt, f.tls_client_hello(rng.randbytes(32)),
                            f.tls_server_flight(rng.randbytes(32), [f.make_certificate(target.name, seed=self.cfg.seed * 50 + target.ipb[-1])]))
            o += s.exchange(o[-1][0] + 2_000_000, f.tls_client_finish(b"\x04" + rng.randbytes(64), self.blob.take(40)),
                            f.tls_server_finish(self.blob.take(40)))
            tt = o[-1][0] + SEC
            end = tt + rng.randrange(8, 25) * MINUTE
            while tt < end:  # keystrokes and mouse up, screen updates down (thinned)
                o += s.exchange(tt, rdp_data(self.blob.take(rng.randrange(60, 400))),
                                rdp_data(self.blob.take(rng.randrange(500, 9000))), rtt=1_500_000)
                tt = o[-1][0] + rng.randrange(10, 40) * SEC
            o += s.close(tt)
            out += o
            t = tt + rng.randrange(2, 10) * MINUTE
        return out


class Infrastructure(Actor):
    """The domain controller's own upstream NTP, and the router refreshing its ARP cache."""

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        p, rng = self.p, self.rng
        out: list[Record] = []
        t = t0 + rng.randrange(HOUR)
        pool = p.external(NTP_POOL)
        out.append(p.udp(t, p.dc, pool, 123, 123, f.ntp(t)))
        out.append(p.udp(t + 15_000_000, pool, p.dc, 123, 123, f.ntp(t + 15_000_000, server=True, origin_ns=t, stratum=3)))
        for h in p.internal:
            if rng.random() < 0.25:
                r = p.router_it if h.vlan == VLAN_IT else p.router_ot
                t = t0 + rng.randrange(HOUR)
                out.append((t, f.arp_frame(1, r.macb, r.ipb, h.ipb, vlan=h.vlan)))
                out.append((t + 300_000, f.arp_frame(2, h.macb, h.ipb, r.ipb, target_mac=r.macb, vlan=h.vlan)))
        return out


class Historian(Actor):
    """HIST01 pulls WinCC archive segments from a share on WINCC01 every five minutes (SMB2 READ)."""

    def __init__(self, p: Plant, cfg: Config, start: int) -> None:
        super().__init__(p, cfg, "historian")
        self.next = start + 30 * SEC

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        p, rng = self.p, self.rng
        out: list[Record] = []
        while self.next < t1:
            t = self.next
            self.next += 5 * MINUTE + rng.randrange(-5, 5) * SEC
            if p.near_boundary(t, MINUTE):
                continue
            s = p.tcp(p.hist, p.wincc, f.SMB_PORT, rng, win_server=65535)
            o = s.handshake(t)
            o += s.exchange(o[-1][0] + 500_000, f.smb2_negotiate(0, b"HIST01-GUID-0001"),
                            f.smb2_negotiate_resp(0, b"WINCC01-GUID-001", system_time_ns=t), rtt=600_000)
            sid = 0x0000500000000000 | rng.getrandbits(32)
            n = rng.randrange(3000, 9000)
            o += s.exchange(o[-1][0] + 3_000_000, f.smb2_read(1, sid, 3, b"WinCC-archive-01", 0, n),
                            f.smb2_read_resp(1, sid, 3, self.blob.take(n)), rtt=2_000_000)
            o += s.close(o[-1][0] + 50_000_000)
            out += o
        return out


# --------------------------------------------------------------------------- the attack


@dataclass
class Step:
    id: str
    title: str
    start: int = 0
    end: int = 0
    source: str = ""
    targets: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    attack_ids: list[str] = field(default_factory=list)
    check: str = ""            # a tshark display filter that matches the step's packets
    facts: dict = field(default_factory=dict)

    def span(self, recs: list[Record]) -> None:
        if recs:
            self.start = min(self.start or recs[0][0], min(r[0] for r in recs))
            self.end = max(self.end, max(r[0] for r in recs))


C2_NOSNI = ("203.0.113.45", "198.51.100.23", "192.0.2.77")
C2_SELFSIGNED = "203.0.113.45"
EXT_502 = ("198.51.100.200", "203.0.113.9", "192.0.2.150")


class Attacker(Actor):
    """The seed incident: a new device in Computing, admin RDP to WinCC with a large upload, a scan of
    the Industrial VLAN on 102/502, call-home, S7 and Modbus commands, gone the next day."""

    def __init__(self, p: Plant, cfg: Config, t_arrive: int) -> None:
        super().__init__(p, cfg, "attacker")
        self.t = t_arrive
        self.steps: list[Step] = []
        self.done = False

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        if self.done or not (t0 <= self.t < t1):
            return ()
        self.done = True
        out: list[Record] = []
        for step in (self._arrive, self._rdp, self._scan, self._call_home, self._ics, self._depart):
            recs = step()
            out += recs
        return out

    # 1. a new device appears: DHCP with a host name
    def _arrive(self) -> list[Record]:
        p, a, rng = self.p, self.p.attacker, self.rng
        t, xid = self.t, rng.getrandbits(32)
        bcast = "255.255.255.255"
        zero = Host("", "0.0.0.0", a.mac, a.vlan, "", "")
        out = [p.broadcast_udp(t, zero, bcast, 68, 67, f.dhcp(f.DHCP_DISCOVER, xid, a.macb, hostname=a.name))]
        offer = dict(server_id=p.dc.ipb, lease=86400, subnet_mask="255.255.255.0", router=p.router_it.ipb,
                     dns=p.dc.ipb, domain="corp.foodplant.local")
        out.append(p.udp(t + 3_000_000, p.dc, a, 67, 68, f.dhcp(f.DHCP_OFFER, xid, a.macb, your_ip=a.ipb, **offer)))
        out.append(p.broadcast_udp(t + 1_005_000_000, zero, bcast, 68, 67, f.dhcp(
            f.DHCP_REQUEST, xid, a.macb, hostname=a.name, requested_ip=a.ipb, server_id=p.dc.ipb)))
        out.append(p.udp(t + 1_008_000_000, p.dc, a, 67, 68, f.dhcp(f.DHCP_ACK, xid, a.macb, your_ip=a.ipb, **offer)))
        t2 = t + 2 * SEC
        out.append((t2, f.arp_frame(1, a.macb, a.ipb, p.router_it.ipb, vlan=a.vlan)))
        out.append((t2 + 400_000, f.arp_frame(2, p.router_it.macb, p.router_it.ipb, a.ipb, target_mac=a.macb, vlan=a.vlan)))
        for i, name in enumerate(("WORKGROUP", "WINCC01", "WPAD")):
            out.append(p.broadcast_udp(t2 + (i + 1) * SEC, a, f"{NET_IT}.255", 137, 137, f.nbns_query(0x8000 + i, name)))
        self.steps.append(Step(
            "new_device", "A new device (MAC and vendor never seen) joins Computing with DHCP",
            source=a.ip, targets=[p.dc.ip], ports=[67],
            models=["Unusual Activity from New Device"], attack_ids=["T0848"],
            check=f'dhcp.option.hostname == "{a.name}" && eth.src == {a.mac} && ip.src == 0.0.0.0',
            facts={"mac": a.mac, "vendor": a.vendor, "hostname": a.name, "ip": a.ip}))
        self.steps[-1].span(out)
        return out

    # 2. admin RDP to the WinCC server and a large upload
    def _rdp(self) -> list[Record]:
        p, a, rng, w = self.p, self.p.attacker, self.rng, self.p.wincc
        t = self.t + 6 * MINUTE
        s = p.tcp(a, w, f.RDP_PORT, rng, win_server=65535)
        out = s.handshake(t, 600_000)
        out += s.exchange(out[-1][0] + 500_000, f.rdp_connection_request("Administrator"), f.rdp_connection_confirm())
        out += s.exchange(out[-1][0] + 2_000_000, f.tls_client_hello(rng.randbytes(32)),
                          f.tls_server_flight(rng.randbytes(32), [f.make_certificate(w.name, seed=self.cfg.seed * 50 + w.ipb[-1])]))
        out += s.exchange(out[-1][0] + 2_000_000, f.tls_client_finish(b"\x04" + rng.randbytes(64), self.blob.take(40)),
                          f.tls_server_finish(self.blob.take(40)))
        tt = out[-1][0] + SEC
        up = 0
        for i in range(40):  # interactive session with a large upload in the middle
            n_up = 1_500_000 if 10 <= i < 16 else rng.randrange(100, 600)
            out += s.exchange(tt, rdp_data(self.blob.take(n_up)),
                              rdp_data(self.blob.take(rng.randrange(800, 12000))), rtt=1_500_000)
            up += n_up
            tt = out[-1][0] + rng.randrange(5, 30) * SEC
        out += s.close(tt)
        self.steps.append(Step(
            "admin_rdp", "Admin RDP (Cookie: mstshash=Administrator) to the WinCC server, large upload over 3389",
            source=a.ip, targets=[w.ip], ports=[3389],
            models=["Unusual Admin RDP Session", "Unusual Data Volume", "Anomalous IT to ICS Connection",
                    "Unusual ICS Connectivity", "Unusual Activity from New Device"],
            attack_ids=["T0886", "T0859"],
            check=f'ip.src == {a.ip} && ip.dst == {w.ip} && rdp.rt_cookie contains "mstshash=Administrator"',
            facts={"user": "Administrator", "bytes_uploaded_approx": up}))
        self.steps[-1].span(out)
        return out

    # 3. scan of the Industrial VLAN on 102 and 502
    def _scan(self) -> list[Record]:
        p, a, rng = self.p, self.p.attacker, self.rng
        t = t_first = self.t + 52 * MINUTE
        out: list[Record] = []
        probes = [(i, port) for i in range(1, 255) for port in (102, 502)]
        rng.shuffle(probes)
        services = {h.ip: ({102} if h in p.plcs else {502} if h in p.mb else set()) for h in p.internal}
        failed = 0
        arped: set[str] = set()
        for i, port in probes:
            ip = f"{NET_OT}.{i}"
            target = p.by_ip.get(ip)
            if ip == p.router_ot.ip:
                target = p.router_ot
            s = p.tcp(a, target or Host("", ip, "02:00:00:00:00:00", VLAN_OT, "", ""), port, rng)
            if target is None:
                out += s.unanswered(t, retries=1)
                if ip not in arped:
                    arped.add(ip)
                    r = p.router_ot
                    out.append((t + 200_000, f.arp_frame(1, r.macb, r.ipb, f.ip_bytes(ip), vlan=VLAN_OT)))
                failed += 1
            elif port in services.get(ip, set()):
                out += s.handshake(t, 500_000)
                out += s.reset(out[-1][0] + 100_000)
            else:
                out += s.refused(t, 500_000)
                failed += 1
            t += rng.randrange(150, 700) * 1_000_000
        self.steps.append(Step(
            "ics_scan", "Scan of the Industrial VLAN on ports 102 and 502",
            source=a.ip, targets=sorted({f"{NET_OT}.{i}" for i in range(1, 255)}, key=lambda x: int(x.rsplit(".", 1)[1])),
            ports=[102, 502],
            models=["Multiple Failed Internal Connections", "Multiple Failed Connections to ICS Device",
                    "Anomalous IT to ICS Connection", "Unusual ICS Connectivity", "Unusual Activity from New Device"],
            attack_ids=["T0846"],
            check=(f"ip.src == {a.ip} && tcp.flags.syn == 1 && tcp.flags.ack == 0 && (tcp.dstport == 102 || tcp.dstport == 502)"
                   f" && frame.time_epoch >= {t_first / SEC:.3f} && frame.time_epoch <= {t / SEC:.3f}"),
            facts={"probes": len(probes), "failed": failed,
                   "open": sorted(ip for ip, ports in services.items() if ports)}))
        self.steps[-1].span(out)
        return out

    # 4. call home: TLS without SNI (one self-signed), port 502 to the internet, a burst to rare hosts
    def _call_home(self) -> list[Record]:
        p, a, rng = self.p, self.p.attacker, self.rng
        t0 = self.t + 75 * MINUTE
        t = t0
        tls: list[Record] = []
        selfsigned = [f.make_certificate("localhost", seed=self.cfg.seed * 7 + 1, org="Unknown")]
        for k in range(14):  # beaconing every few minutes, mostly to the self-signed one
            ip = C2_NOSNI[0] if k % 3 else C2_NOSNI[1 + (k // 3) % 2]
            chain = selfsigned if ip == C2_SELFSIGNED else chain_for(f"cdn-{ip.replace('.', '-')}.example.net", self.cfg.seed)
            tls += tls_conversation(p, rng, self.blob, t, a, p.external(ip), 443 if ip != C2_NOSNI[2] else 8443,
                                    None, chain, rng.randrange(300, 3000), rng.randrange(200, 2000),
                                    ciphers=f.TLS_CIPHERS_TOOL, rtt=45_000_000)
            t = tls[-1][0] + rng.randrange(240, 480) * SEC
        self.steps.append(Step(
            "c2_tls", "Call home: TLS without SNI to new external addresses, one with a self-signed certificate",
            source=a.ip, targets=list(C2_NOSNI), ports=[443, 8443],
            models=["Anomalous SSL without SNI to New External", "Rare External SSL Self-Signed",
                    "Unusual Activity from New Device"],
            attack_ids=["T0869", "T0885"],
            check=f"ip.src == {a.ip} && !(ip.dst == 10.0.0.0/8) && tls.handshake.type == 1 && !tls.handshake.extensions_server_name",
            facts={"self_signed": C2_SELFSIGNED}))
        self.steps[-1].span(tls)
        fail: list[Record] = []
        t = t0 + 4 * MINUTE
        for ip in EXT_502:
            for _ in range(2):
                fail += p.tcp(a, p.external(ip), 502, rng).unanswered(t, retries=2)
                t += rng.randrange(5, 20) * SEC
        self.steps.append(Step(
            "ext_502", "Failed connections to external hosts on port 502",
            source=a.ip, targets=list(EXT_502), ports=[502],
            models=["Unusual External Connectivity", "Unusual Activity from New Device"], attack_ids=["T0885"],
            check=f"ip.src == {a.ip} && tcp.dstport == 502 && !(ip.dst == 10.0.0.0/8)"))
        self.steps[-1].span(fail)
        burst: list[Record] = []
        t = t0 + 9 * MINUTE
        rare = [f"{n}.{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                for n in (45, 91, 185, 193, 194, 5, 46, 77, 89, 95, 103, 141, 146, 176, 178, 188, 212, 217)]
        rare = [ip for ip in rare if not ip.startswith(("10.", "127.", "100."))]
        for ip in rare:
            port = rng.choice((443, 443, 8080, 80, 8443))
            s = p.tcp(a, p.external(ip), port, rng)
            r = rng.random()
            if r < 0.4:
                burst += s.unanswered(t, retries=1)
            elif r < 0.7:
                burst += s.refused(t, 60_000_000)
            else:
                o = s.handshake(t, 60_000_000)
                o += s.close(o[-1][0] + rng.randrange(1, 5) * SEC)
                burst += o
            t += rng.randrange(2, 8) * SEC
        self.steps.append(Step(
            "ext_burst", "Burst of connections to rare external addresses, many failing",
            source=a.ip, targets=rare, ports=sorted({443, 8080, 80, 8443}),
            models=["Unusual External Connectivity", "Unusual Activity from New Device"], attack_ids=["T0885"],
            check=(f"ip.src == {a.ip} && tcp.flags.syn == 1 && tcp.flags.ack == 0 && !(ip.dst == 10.0.0.0/8)"
                   f" && tcp.dstport != 502 && !({' || '.join(f'ip.dst == {ip}' for ip in C2_NOSNI)})")))
        self.steps[-1].span(burst)
        return tls + fail + burst

    # 5. S7 and Modbus: discover, read, write, stop / download
    def _ics(self) -> list[Record]:
        p, a, rng = self.p, self.p.attacker, self.rng
        t = self.t + 150 * MINUTE
        out_s7: list[Record] = []
        plcs = p.plcs[:2]
        ops: list[dict] = []
        for k, plc in enumerate(plcs):
            s, rec = s7_connect(p, rng, t, a, plc)
            out_s7 += rec
            tt = rec[-1][0] + 3 * SEC
            pdu = 0x100
            for szl, ent in ((0x0011, f.szl_0011_entries("6ES7 516-3AN01-0AB0", fw=(2, 8))),
                             (0x001C, SZL_COMPONENTS), (0x0424, SZL_MODE)):
                pdu += 1
                out_s7 += s.exchange(tt, f.s7_szl_read(pdu, szl), f.s7_szl_response(pdu, szl, 0, ent))
                ops.append({"proto": "s7comm", "target": plc.ip, "op": f"Read SZL 0x{szl:04X}", "class": "DISCOVER"})
                tt = out_s7[-1][0] + rng.randrange(2, 6) * SEC
            for db in (10, 20, 30, 40):
                pdu += 1
                out_s7 += s.exchange(tt, f.s7_read_var(pdu, [(f.S7_AREA_DB, db, 0, 32)]), f.s7_read_var_ack(pdu, [rng.randbytes(32)]))
                tt = out_s7[-1][0] + rng.randrange(1, 4) * SEC
            ops.append({"proto": "s7comm", "target": plc.ip, "op": "Read Var DB10-DB40", "class": "READ"})
            for addr, val in ((0, b"\x00\x00"), (4, b"\x42\xc8\x00\x00"), (2, b"\x00\x01")):
                pdu += 1
                out_s7 += s.exchange(tt, f.s7_write_var(pdu, f.S7_AREA_DB, 10, addr, val), f.s7_write_var_ack(pdu))
                tt = out_s7[-1][0] + rng.randrange(3, 15) * SEC
            ops.append({"proto": "s7comm", "target": plc.ip, "op": "Write Var DB10", "class": "ACTION"})
            pdu += 1
            if k == 0:
                out_s7 += s.exchange(tt, f.s7_request_download(pdu, "OB", 1), f.s7_request_download_ack(pdu))
                ops.append({"proto": "s7comm", "target": plc.ip, "op": "Request Download OB1", "class": "REPROGRAM"})
            else:
                out_s7 += s.exchange(tt, f.s7_plc_stop(pdu), f.s7_plc_stop_ack(pdu))
                ops.append({"proto": "s7comm", "target": plc.ip, "op": "PLC Stop", "class": "ACTION"})
            out_s7 += s.close(out_s7[-1][0] + 2 * SEC)
            t = out_s7[-1][0] + rng.randrange(1, 4) * MINUTE
        out_mb: list[Record] = []
        for dev in p.mb[:2]:
            s = p.tcp(a, dev, f.MODBUS_PORT, rng)
            o = s.handshake(t, 500_000)
            tt = o[-1][0] + SEC
            reqs = [
                (f.mb_read_device_id(1, 0), f.mb_read_device_id_resp(
                    [(0, b"Schneider Electric"), (1, b"BMX P34 2020"), (2, b"v3.20")]), "DISCOVER", "Read Device ID"),
                (f.mb_report_server_id(), f.mb_report_server_id_resp(b"\x42M340"), "DISCOVER", "Report Server ID"),
                (f.mb_read_req(3, 0, 50), f.mb_read_regs_resp(3, [rng.randrange(3000) for _ in range(50)]), "READ", "Read Holding Registers"),
                (f.mb_read_req(1, 0, 32), f.mb_read_bits_resp(1, [rng.random() < 0.5 for _ in range(32)]), "READ", "Read Coils"),
                (f.mb_write_regs(0, [0, 0, 9999]), f.mb_write_multi_resp(16, 0, 3), "ACTION", "Write Multiple Registers"),
                (f.mb_write_single_coil(3, False), f.mb_write_single_coil(3, False), "ACTION", "Write Single Coil"),
                (f.mb_write_single_reg(7, 0), f.mb_write_single_reg(7, 0), "ACTION", "Write Single Register"),
            ]
            for trans, (req, resp, cls, name) in enumerate(reqs, start=1):
                o += s.exchange(tt, f.modbus(trans, 1, req), f.modbus(trans, 1, resp))
                ops.append({"proto": "modbus", "target": dev.ip, "op": name, "class": cls})
                tt = o[-1][0] + rng.randrange(2, 10) * SEC
            o += s.close(tt)
            out_mb += o
            t = tt + MINUTE
        dedup = []
        for o in ops:
            if o not in dedup:
                dedup.append(o)
        self.steps.append(Step(
            "ics_commands", "S7 and Modbus sessions to PLCs: SZL reads and device identification, reads, writes, a PLC Stop and a block download request",
            source=a.ip, targets=[h.ip for h in plcs + p.mb[:2]], ports=[102, 502],
            models=["Experimental / Possible ICS Protocol", "Multiple New Discover Commands",
                    "Multiple New Action Commands", "Uncommon ICS Reprogram", "Anomalous IT to ICS Connection",
                    "Unusual ICS Connectivity", "Unusual Activity from New Device"],
            attack_ids=["T0888", "T0861", "T0855", "T0836", "T0816", "T0843"],
            check=f"ip.src == {a.ip} && (s7comm || modbus)",
            facts={"operations": dedup}))
        self.steps[-1].span(out_s7 + out_mb)
        return out_s7 + out_mb

    # 6. quiet presence until the next morning, then gone
    def _depart(self) -> list[Record]:
        p, a, rng = self.p, self.p.attacker, self.rng
        out: list[Record] = []
        t = self.t + 3 * HOUR + 10 * MINUTE
        end = self.t - self.t % DAY + DAY + 8 * HOUR + rng.randrange(30) * MINUTE
        while t < end:  # the router keeps it in its ARP cache
            r = p.router_it
            out.append((t, f.arp_frame(1, r.macb, r.ipb, a.ipb, vlan=a.vlan)))
            out.append((t + 300_000, f.arp_frame(2, a.macb, a.ipb, r.ipb, target_mac=r.macb, vlan=a.vlan)))
            t += rng.randrange(40, 80) * MINUTE
        # the next morning: it renews its lease and looks up the WinCC server, then leaves
        t, xid = end - 25 * MINUTE, rng.getrandbits(32)
        out.append(p.udp(t, a, p.dc, 68, 67, f.dhcp(f.DHCP_REQUEST, xid, a.macb, client_ip=a.ipb, hostname=a.name)))
        out.append(p.udp(t + 2_000_000, p.dc, a, 67, 68, f.dhcp(
            f.DHCP_ACK, xid, a.macb, client_ip=a.ipb, your_ip=a.ipb, server_id=p.dc.ipb, lease=86400,
            subnet_mask="255.255.255.0", router=p.router_it.ipb, dns=p.dc.ipb, domain="corp.foodplant.local")))
        name, qid, sport = "wincc01.corp.foodplant.local", rng.randrange(65536), a.port()
        out.append(p.udp(t + 4 * SEC, a, p.dc, sport, 53, f.dns_query(qid, name)))
        out.append(p.udp(t + 4 * SEC + 600_000, p.dc, a, 53, sport, f.dns_response(qid, name, [p.wincc.ip], ttl=1200)))
        out.sort(key=lambda r: r[0])
        self.steps.append(Step(
            "departure", "The device stays quiet overnight, renews its lease the next morning, then is gone",
            source=a.ip, targets=[], models=[], attack_ids=[],
            check=f"eth.addr == {a.mac}", facts={"last_seen": iso(out[-1][0]) if out else None}))
        self.steps[-1].span(out)
        return out


# --------------------------------------------------------------------------- driver


def generate(cfg: Config) -> dict:
    """Write the learning and incident captures (and ground truth when the attack is on)."""
    p = Plant(cfg)
    t_begin = ns(START)
    t_split = t_begin + cfg.learn_days * DAY
    p.boundaries = [t_split]
    t_end = t_split + int(cfg.incident_hours * HOUR)
    maintenance = t_begin + (min(cfg.learn_days, 2) - 1) * DAY + 21 * HOUR + 10 * MINUTE
    actors: list[Actor] = []
    actors += [S7Poller(p, cfg, plc, t_begin) for plc in p.plcs]
    actors += [ModbusPoller(p, cfg, dev, t_begin) for dev in p.mb]
    actors.append(EngineeringWorkstation(p, cfg, maintenance))
    actors += [WindowsHost(p, cfg, h, office_user=True, dhcp=True) for h in p.ws]
    actors.append(WindowsHost(p, cfg, p.jump, office_user=True, dhcp=False))
    actors += [WindowsHost(p, cfg, h, office_user=False, dhcp=False) for h in (p.wincc, p.ews, p.hist, p.fs)]
    actors.append(JumpHost(p, cfg, "jump"))
    actors.append(Infrastructure(p, cfg, "infra"))
    actors.append(Historian(p, cfg, t_begin))
    attacker = None
    if cfg.attack:
        attacker = Attacker(p, cfg, t_split + 13 * HOUR + 12 * MINUTE)
        actors.append(attacker)

    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"learn": out_dir / cfg.learn_name, "incident": out_dir / cfg.incident_name}
    counts = {"learn": 0, "incident": 0}
    heap: list[tuple[int, int, bytes]] = []
    seq = itertools.count()
    with PcapngWriter(paths["learn"], interfaces=((1, 9),)) as w_learn, \
            PcapngWriter(paths["incident"], interfaces=((1, 9),)) as w_inc:
        for t0 in range(t_begin, t_end, HOUR):
            t1 = t0 + HOUR
            for actor in actors:
                for ts, frame in actor.run(t0, t1):
                    heapq.heappush(heap, (ts, next(seq), frame))
            while heap and heap[0][0] < t1:
                ts, _, frame = heapq.heappop(heap)
                if ts >= t_end:
                    continue
                if ts < t_split:
                    w_learn.write(ts, frame)
                    counts["learn"] += 1
                else:
                    w_inc.write(ts, frame)
                    counts["incident"] += 1
    summary = {
        "seed": cfg.seed,
        "learn": {"path": paths["learn"].name, "packets": counts["learn"], "start": iso(t_begin), "end": iso(t_split)},
        "incident": {"path": paths["incident"].name, "packets": counts["incident"], "start": iso(t_split),
                     "end": iso(t_end)},
    }
    if attacker is not None:
        gt = ground_truth(p, cfg, attacker, summary)
        (out_dir / cfg.ground_truth_name).write_text(json.dumps(gt, indent=2) + "\n")
    return summary


def ground_truth(p: Plant, cfg: Config, attacker: Attacker, summary: dict) -> dict:
    return {
        "description": "The seed incident replayed in the demo plant (see demo_data/README.md).",
        "generator": {"seed": cfg.seed, "learn_days": cfg.learn_days, "plcs": cfg.plcs,
                      "modbus_devices": cfg.modbus_devices, "workstations": cfg.workstations, "poll_s": cfg.poll_s},
        "captures": summary,
        "zones": {"Computing": {"kind": "it", "cidr": f"{NET_IT}.0/24", "vlan": VLAN_IT},
                  "Industrial": {"kind": "ot", "cidr": f"{NET_OT}.0/24", "vlan": VLAN_OT}},
        "attacker": {"ip": p.attacker.ip, "mac": p.attacker.mac, "vendor": p.attacker.vendor,
                     "hostname": p.attacker.name},
        "devices": [{"name": h.name, "ip": h.ip, "mac": h.mac, "vendor": h.vendor, "role": h.role,
                     "zone": "Computing" if h.vlan == VLAN_IT else "Industrial"}
                    for h in (*p.internal, p.router_it, p.router_ot)],
        "steps": [{"id": s.id, "title": s.title, "start": iso(s.start), "end": iso(s.end),
                   "start_ns": s.start, "end_ns": s.end, "capture": summary["incident"]["path"],
                   "source": s.source, "targets": s.targets, "ports": s.ports, "models": s.models,
                   "attack_ids": s.attack_ids, "tshark_filter": s.check, **({"facts": s.facts} if s.facts else {})}
                  for s in attacker.steps],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=Config.seed)
    ap.add_argument("--learn-days", type=int, default=Config.learn_days)
    ap.add_argument("--plcs", type=int, default=Config.plcs, help="S7 PLCs (default %(default)s)")
    ap.add_argument("--modbus-devices", type=int, default=Config.modbus_devices)
    ap.add_argument("--workstations", type=int, default=Config.workstations)
    ap.add_argument("--poll", type=float, default=Config.poll_s, help="SCADA poll period in seconds")
    ap.add_argument("--incident-hours", type=float, default=Config.incident_hours)
    ap.add_argument("--attack", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--out-dir", type=Path, default=Config.out_dir)
    ap.add_argument("--learn", default=Config.learn_name, help="learning capture file name")
    ap.add_argument("--incident", default=Config.incident_name, help="incident capture file name")
    ap.add_argument("--ground-truth", default=Config.ground_truth_name)
    a = ap.parse_args(argv)
    if a.plcs < 2 or a.modbus_devices < 2:
        ap.error("the plant needs at least 2 S7 PLCs and 2 Modbus devices")
    if a.plcs + a.modbus_devices > 230 or a.workstations > 230:
        ap.error("each VLAN is a /24: at most 230 OT devices and 230 workstations")
    cfg = Config(seed=a.seed, learn_days=max(1, a.learn_days), plcs=a.plcs, modbus_devices=a.modbus_devices,
                 workstations=max(1, a.workstations), attack=a.attack, poll_s=a.poll, out_dir=a.out_dir,
                 learn_name=a.learn, incident_name=a.incident, ground_truth_name=a.ground_truth,
                 incident_hours=a.incident_hours)
    print(json.dumps(generate(cfg), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
