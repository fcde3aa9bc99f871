"""Attack scenarios played on top of a plant's normal traffic, each step recorded with its time
span, source, targets, the models expected to fire and a tshark filter that finds its packets
(the ground truth a detection test compares with). Today one scenario: the seed incident."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.actors import WindowActor
from plantwatch.core.synth.clock import DAY, HOUR, MINUTE, SEC, iso
from plantwatch.core.synth.plant import Host, Plant, Record
from plantwatch.core.synth.traffic.field_poll import FIELD, conversation
from plantwatch.core.synth.traffic.ics import CPU_ORDER_NUMBER, SZL_COMPONENTS, SZL_MODE, s7_connect
from plantwatch.core.synth.traffic.it import chain_for, rdp_data, rdp_handshake, tls_conversation


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


class Attacker(WindowActor):
    """The seed incident: a new device in Computing, admin RDP to WinCC with a large upload, a scan of
    the Industrial VLAN on 102/502, call-home, S7 and Modbus commands, gone the next day."""

    def __init__(self, p: Plant, attacker: Host, ot_zone: str, t_arrive: int) -> None:
        super().__init__(p, "attacker")
        self.a = attacker
        self.ot = p.shape.zone(ot_zone)
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
        p, a, rng = self.p, self.a, self.rng
        t, xid = self.t, rng.getrandbits(32)
        bcast = "255.255.255.255"
        zero = p.host("", "0.0.0.0", p.shape.zone(a.net), a.mac)
        out = [p.broadcast_udp(t, zero, bcast, 68, 67, f.dhcp(f.DHCP_DISCOVER, xid, a.macb, hostname=a.name))]
        offer = dict(server_id=p.dc.ipb, lease=86400, subnet_mask="255.255.255.0", router=p.routers[a.net].ipb,
                     dns=p.dc.ipb, domain=p.shape.domain)
        out.append(p.udp(t + 3_000_000, p.dc, a, 67, 68, f.dhcp(f.DHCP_OFFER, xid, a.macb, your_ip=a.ipb, **offer)))
        out.append(p.broadcast_udp(t + 1_005_000_000, zero, bcast, 68, 67, f.dhcp(
            f.DHCP_REQUEST, xid, a.macb, hostname=a.name, requested_ip=a.ipb, server_id=p.dc.ipb)))
        out.append(p.udp(t + 1_008_000_000, p.dc, a, 67, 68, f.dhcp(f.DHCP_ACK, xid, a.macb, your_ip=a.ipb, **offer)))
        t2 = t + 2 * SEC
        out.append((t2, f.arp_frame(1, a.macb, a.ipb, p.routers[a.net].ipb, vlan=a.vlan)))
        out.append((t2 + 400_000, f.arp_frame(2, p.routers[a.net].macb, p.routers[a.net].ipb, a.ipb, target_mac=a.macb, vlan=a.vlan)))
        for i, name in enumerate(("WORKGROUP", p.scada.name, "WPAD")):
            out.append(p.broadcast_udp(t2 + (i + 1) * SEC, a, f"{p.shape.zone(a.net).prefix}.255", 137, 137, f.nbns_query(0x8000 + i, name)))
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
        p, a, rng, w = self.p, self.a, self.rng, self.p.scada
        t = self.t + 6 * MINUTE
        s = p.tcp(a, w, f.RDP_PORT, rng, win_server=65535)
        out = s.handshake(t, 600_000)
        out += rdp_handshake(p, self, s, out[-1][0] + 500_000, "Administrator", w)
        tt = out[-1][0] + SEC
        up = 0
        for i in range(40):  # interactive session with a large upload in the middle
            n_up = 1_500_000 if 10 <= i < 16 else rng.randrange(100, 600)
            out += s.exchange(tt, rdp_data(self.opaque(n_up)),
                              rdp_data(self.opaque(rng.randrange(800, 12000))), rtt=1_500_000)
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
        p, a, rng, ot = self.p, self.a, self.rng, self.ot
        t = t_first = self.t + 52 * MINUTE
        out: list[Record] = []
        ports = tuple(FIELD[proto].conversation.port for proto in p.shape.protocols)
        probes = [(i, port) for i in range(1, 255) for port in ports]
        rng.shuffle(probes)
        services = {h.ip: ({ports[0]} if h in p.plcs else {ports[1]} if h in p.mbs else set()) for h in p.internal}
        failed = 0
        arped: set[str] = set()
        for i, port in probes:
            ip = f"{ot.prefix}.{i}"
            target = p.by_ip.get(ip)
            if ip == p.routers[ot.name].ip:
                target = p.routers[ot.name]
            s = p.tcp(a, target or p.host("", ip, ot, "02:00:00:00:00:00"), port, rng)
            if target is None:
                out += s.unanswered(t, retries=1)
                if ip not in arped:
                    arped.add(ip)
                    r = p.routers[ot.name]
                    out.append((t + 200_000, f.arp_frame(1, r.macb, r.ipb, f.ip_bytes(ip), vlan=ot.vlan)))
                failed += 1
            elif port in services.get(ip, set()):
                out += s.handshake(t, 500_000)
                out += s.reset(out[-1][0] + 100_000)
            else:
                out += s.refused(t, 500_000)
                failed += 1
            t += rng.randrange(150, 700) * 1_000_000
        self.steps.append(Step(
            "ics_scan", f"Scan of the Industrial VLAN on ports {ports[0]} and {ports[1]}",
            source=a.ip, targets=sorted({f"{ot.prefix}.{i}" for i in range(1, 255)}, key=lambda x: int(x.rsplit(".", 1)[1])),
            ports=list(ports),
            models=["Multiple Failed Internal Connections", "Multiple Failed Connections to ICS Device",
                    "Anomalous IT to ICS Connection", "Unusual ICS Connectivity", "Unusual Activity from New Device"],
            attack_ids=["T0846"],
            check=(f"ip.src == {a.ip} && tcp.flags.syn == 1 && tcp.flags.ack == 0 && (tcp.dstport == {ports[0]} || tcp.dstport == {ports[1]})"
                   f" && frame.time_epoch >= {t_first / SEC:.3f} && frame.time_epoch <= {t / SEC:.3f}"),
            facts={"probes": len(probes), "failed": failed,
                   "open": sorted(ip for ip, ports in services.items() if ports)}))
        self.steps[-1].span(out)
        return out

    # 4. call home: TLS without SNI (one self-signed), port 502 to the internet, a burst to rare hosts
    def _call_home(self) -> list[Record]:
        p, a, rng = self.p, self.a, self.rng
        t0 = self.t + 75 * MINUTE
        t = t0
        tls: list[Record] = []
        selfsigned = [f.make_certificate("localhost", seed=p.shape.seed * 7 + 1, org="Unknown")]
        for k in range(14):  # beaconing every few minutes, mostly to the self-signed one
            ip = C2_NOSNI[0] if k % 3 else C2_NOSNI[1 + (k // 3) % 2]
            chain = selfsigned if ip == C2_SELFSIGNED else chain_for(f"cdn-{ip.replace('.', '-')}.example.net", p.shape.seed, p.shape.ca_name)
            tls += tls_conversation(p, rng, self.opaque, t, a, p.external(ip), 443 if ip != C2_NOSNI[2] else 8443,
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
        p = self.p
        ctrl, fld = p.shape.protocols
        t = self.t + 150 * MINUTE
        ops: list[dict] = []
        out_ctrl, t = self._ics_s7(p.plcs[:2], t, ops) if ctrl == "s7" else self._ics_field(ctrl, p.plcs[:2], t, ops)
        out_fld, t = self._ics_modbus(p.mbs[:2], t, ops) if fld == "modbus" else self._ics_field(fld, p.mbs[:2], t, ops)
        dedup = []
        for o in ops:
            if o not in dedup:
                dedup.append(o)
        names = " and ".join(FIELD[x].conversation.display_filter for x in (ctrl, fld))
        models = ["Experimental / Possible ICS Protocol", "Multiple New Discover Commands",
                  "Multiple New Action Commands", "Uncommon ICS Reprogram", "Anomalous IT to ICS Connection",
                  "Unusual ICS Connectivity", "Unusual Activity from New Device"]
        if not any(o["class"] == "REPROGRAM" for o in dedup):
            models.remove("Uncommon ICS Reprogram")
        title = ("S7 and Modbus sessions to PLCs: SZL reads and device identification, reads, writes, a PLC Stop and a block download request"
                 if (ctrl, fld) == ("s7", "modbus") else
                 f"{FIELD[ctrl].role} and {FIELD[fld].role} sessions: identification, reads, writes, stop or reset"
                 + (", a download" if "Uncommon ICS Reprogram" in models else ""))
        self.steps.append(Step(
            "ics_commands", title,
            source=self.a.ip, targets=[h.ip for h in p.plcs[:2] + p.mbs[:2]],
            ports=[FIELD[x].conversation.port for x in (ctrl, fld)],
            models=models, attack_ids=["T0888", "T0861", "T0855", "T0836", "T0816", "T0843"],
            check=f"ip.src == {self.a.ip} && ({' || '.join(names.split(' and '))})",
            facts={"operations": dedup}))
        self.steps[-1].span(out_ctrl + out_fld)
        return out_ctrl + out_fld

    def _ics_field(self, proto: str, devs: list[Host], t: int, ops: list[dict]) -> tuple[list[Record], int]:
        """The loud commands in any field protocol: identify, read, write, then a download to the
        first device (a stop when the protocol has none) and a stop of the second."""
        rng = self.rng
        out: list[Record] = []
        for k, dev in enumerate(devs):
            c = conversation(proto, self.p, rng, self.a, dev)
            o = c.open(t)
            o += c.identify(o[-1][0] + 3 * SEC)
            for _ in range(4):
                o += c.read(o[-1][0] + rng.randrange(1, 4) * SEC)
            for i in range(3):
                o += c.write(o[-1][0] + rng.randrange(3, 15) * SEC, i)
            last = c.download(o[-1][0] + rng.randrange(3, 15) * SEC) if k == 0 else []
            o += last or c.stop(o[-1][0] + rng.randrange(3, 15) * SEC)
            o += c.close(o[-1][0] + 2 * SEC)
            ops += c.ops
            out += o
            t = o[-1][0] + rng.randrange(1, 4) * MINUTE
        return out, t

    def _ics_s7(self, plcs: list[Host], t: int, ops: list[dict]) -> tuple[list[Record], int]:
        p, a, rng = self.p, self.a, self.rng
        out_s7: list[Record] = []
        for k, plc in enumerate(plcs):
            s, rec = s7_connect(p, rng, t, a, plc)
            out_s7 += rec
            tt = rec[-1][0] + 3 * SEC
            pdu = 0x100
            for szl, ent in ((0x0011, f.szl_0011_entries(CPU_ORDER_NUMBER, fw=(2, 8))),
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
        return out_s7, t

    def _ics_modbus(self, devs: list[Host], t: int, ops: list[dict]) -> tuple[list[Record], int]:
        p, a, rng = self.p, self.a, self.rng
        out_mb: list[Record] = []
        for dev in devs:
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
        return out_mb, t

    # 6. quiet presence until the next morning, then gone
    def _depart(self) -> list[Record]:
        p, a, rng = self.p, self.a, self.rng
        out: list[Record] = []
        t = self.t + 3 * HOUR + 10 * MINUTE
        end = self.t - self.t % DAY + DAY + 8 * HOUR + rng.randrange(30) * MINUTE
        while t < end:  # the router keeps it in its ARP cache
            r = p.routers[a.net]
            out.append((t, f.arp_frame(1, r.macb, r.ipb, a.ipb, vlan=a.vlan)))
            out.append((t + 300_000, f.arp_frame(2, a.macb, a.ipb, r.ipb, target_mac=r.macb, vlan=a.vlan)))
            t += rng.randrange(40, 80) * MINUTE
        # the next morning: it renews its lease and looks up the WinCC server, then leaves
        t, xid = end - 25 * MINUTE, rng.getrandbits(32)
        out.append(p.udp(t, a, p.dc, 68, 67, f.dhcp(f.DHCP_REQUEST, xid, a.macb, client_ip=a.ipb, hostname=a.name)))
        out.append(p.udp(t + 2_000_000, p.dc, a, 67, 68, f.dhcp(
            f.DHCP_ACK, xid, a.macb, client_ip=a.ipb, your_ip=a.ipb, server_id=p.dc.ipb, lease=86400,
            subnet_mask="255.255.255.0", router=p.routers[a.net].ipb, dns=p.dc.ipb, domain=p.shape.domain)))
        name, qid, sport = f"{p.scada.name.lower()}.{p.shape.domain}", rng.randrange(65536), a.port()
        out.append(p.udp(t + 4 * SEC, a, p.dc, sport, 53, f.dns_query(qid, name)))
        out.append(p.udp(t + 4 * SEC + 600_000, p.dc, a, 53, sport, f.dns_response(qid, name, [p.scada.ip], ttl=1200)))
        out.sort(key=lambda r: r[0])
        self.steps.append(Step(
            "departure", "The device stays quiet overnight, renews its lease the next morning, then is gone",
            source=a.ip, targets=[], models=[], attack_ids=[],
            check=f"eth.addr == {a.mac}", facts={"last_seen": iso(out[-1][0]) if out else None}))
        self.steps[-1].span(out)
        return out


def step_records(attacker: Attacker, capture: str) -> list[dict]:
    """The ground truth's "steps": what each step did, when, and how to find it in `capture`."""
    return [{"id": s.id, "title": s.title, "start": iso(s.start), "end": iso(s.end),
             "start_ns": s.start, "end_ns": s.end, "capture": capture,
             "source": s.source, "targets": s.targets, "ports": s.ports, "models": s.models,
             "attack_ids": s.attack_ids, "tshark_filter": s.check, **({"facts": s.facts} if s.facts else {})}
            for s in attacker.steps]
