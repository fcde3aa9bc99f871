"""Attack variants for the scenario plants (core/synth/scenarios.py), each a class of attack a real
plant sees that the seed incident (core/synth/attack.py) does not cover: slow reconnaissance, an
insider on the engineering workstation, a field device turned client, a flood of writes, a file
pushed between field devices, beaconing call-home. Each records its `Step`s (the same ground-truth
records as the seed incident) with the model ids expected to fire.
"""

from __future__ import annotations

from collections.abc import Iterable

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.actors import WindowActor
from plantwatch.core.synth.attack import Step
from plantwatch.core.synth.clock import MINUTE, SEC
from plantwatch.core.synth.demo import DemoPlant
from plantwatch.core.synth.plant import Host, Record
from plantwatch.core.synth.traffic.field_poll import FIELD, conversation
from plantwatch.core.synth.traffic.it import tls_conversation


class Variant(WindowActor):
    """One attack played once at `t`; `attacker` is the device the evaluation ranks."""

    key = "variant"

    def __init__(self, p: DemoPlant, t: int) -> None:
        super().__init__(p, f"variant:{self.key}")
        self.p: DemoPlant = p
        self.t = t
        self.steps: list[Step] = []
        self.done = False

    @property
    def attacker(self) -> Host:
        raise NotImplementedError

    def play(self) -> list[Record]:
        raise NotImplementedError

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        if self.done or not (t0 <= self.t < t1):
            return ()
        self.done = True
        return self.play()

    def step(self, step: Step, recs: list[Record]) -> list[Record]:
        step.span(recs)
        self.steps.append(step)
        return recs


class SlowScan(Variant):
    """A compromised office PC probes the OT subnet on ICS ports, one probe every few minutes
    for hours: no 5-minute window holds more than a couple of failures."""

    key = "slow_scan"

    @property
    def attacker(self) -> Host:
        return self.p.ws[-1]

    def play(self) -> list[Record]:
        p, a, rng = self.p, self.attacker, self.rng
        ot = p.shape.zone("Industrial")
        ctrl_port, field_port = (FIELD[x].conversation.port for x in p.shape.protocols)
        served = {h.ip: ctrl_port for h in p.plcs} | {h.ip: field_port for h in p.mbs}
        ports = (102, 502, 44818, 20000, 2404)
        hosts = list(range(2, 255))
        rng.shuffle(hosts)
        out: list[Record] = []
        t = self.t
        for i in hosts[:70]:
            ip = f"{ot.prefix}.{i}"
            port = rng.choice(ports)
            target = p.by_ip.get(ip) or p.host("", ip, ot, "02:00:00:00:00:00")
            s = p.tcp(a, target, port, rng)
            if served.get(ip) == port:
                o = s.handshake(t, 500_000)
                out += o + s.reset(o[-1][0] + 100_000)
            elif ip in p.by_ip:
                out += s.refused(t, 500_000)
            else:
                out += s.unanswered(t, retries=1)
            t += rng.randrange(150, 400) * SEC
        return self.step(Step(
            "slow_scan", "A probe of the OT subnet on ICS ports every few minutes for hours",
            source=a.ip, targets=[f"{ot.prefix}.{i}" for i in sorted(hosts[:70])], ports=list(ports),
            models=["net.failed_internal", "ics.failed_connections"], attack_ids=["T0846"],
            check=f"ip.src == {a.ip} && tcp.flags.syn == 1 && tcp.flags.ack == 0"), out)


class Insider(Variant):
    """The known engineering workstation, at night, identifies every controller, writes to one,
    stops it and downloads to it (in the controllers' protocol)."""

    key = "insider"

    @property
    def attacker(self) -> Host:
        return self.p.ews

    def play(self) -> list[Record]:
        p, a, rng = self.p, self.attacker, self.rng
        proto = p.shape.protocols[0]
        out: list[Record] = []
        t = self.t
        victim = p.plcs[-1]
        reprogram = False
        for plc in p.plcs:
            c = conversation(proto, p, rng, a, plc)
            o = c.open(t)
            o += c.identify(o[-1][0] + SEC)
            if plc is victim:
                for i in range(3):
                    o += c.write(o[-1][0] + rng.randrange(2, 8) * SEC, i)
                o += c.stop(o[-1][0] + rng.randrange(2, 8) * SEC)
                down = c.download(o[-1][0] + 3 * SEC)
                reprogram = bool(down)
                o += down
            o += c.close(o[-1][0] + 2 * SEC)
            out += o
            t = o[-1][0] + rng.randrange(30, 90) * SEC
        what = FIELD[proto].conversation
        return self.step(Step(
            "insider", "The engineering workstation at night: identity reads, writes, a stop"
            + (" and a download" if reprogram else ""),
            source=a.ip, targets=[h.ip for h in p.plcs], ports=[what.port],
            models=["ics.new_action", "ics.reprogram"] if reprogram else ["ics.new_action"],
            attack_ids=["T0843", "T0816", "T0855"] if reprogram else ["T0816", "T0855"],
            check=f"ip.src == {a.ip} && {what.display_filter}"), out)


class FieldPeer(Variant):
    """A controller turns client of a peer controller: it connects in their protocol, reads its
    identity, writes and stops it."""

    key = "field_peer"

    @property
    def attacker(self) -> Host:
        return self.p.plcs[0]

    def play(self) -> list[Record]:
        p, a, rng = self.p, self.attacker, self.rng
        victim = p.plcs[1]
        c = conversation(p.shape.protocols[0], p, rng, a, victim)
        out = c.open(self.t)
        out += c.identify(out[-1][0] + SEC)
        for i in range(2):
            out += c.write(out[-1][0] + rng.randrange(1, 4) * SEC, i)
        out += c.stop(out[-1][0] + rng.randrange(1, 4) * SEC)
        out += c.close(out[-1][0] + 2 * SEC)
        return self.step(Step(
            "field_peer", f"A {FIELD[p.shape.protocols[0]].role} opens a session to a peer: identity reads, writes and a stop",
            source=a.ip, targets=[victim.ip], ports=[c.port],
            models=["ics.role_contradiction", "ics.connectivity", "ics.new_action"],
            attack_ids=["T0866", "T0855", "T0816"], check=f"ip.src == {a.ip} && ip.dst == {victim.ip}"), out)


class WriteFlood(Variant):
    """The HMI that polls a field device floods it with writes (its protocol's write or
    operate command): thousands in a minute."""

    key = "write_flood"

    @property
    def attacker(self) -> Host:
        return self.p.hmi

    def play(self) -> list[Record]:
        p, a, rng = self.p, self.attacker, self.rng
        dev = p.mbs[0]
        c = conversation(p.shape.protocols[1], p, rng, a, dev)
        out = c.open(self.t)
        t = out[-1][0] + 10 * 1_000_000
        for i in range(2000):
            out += c.write(t, i)
            t = out[-1][0] + rng.randrange(10, 30) * 1_000_000
        out += c.close(t)
        op = " / ".join(o["op"] for o in c.ops)
        return self.step(Step(
            "write_flood", f"2,000 writes ({op}) in about a minute from the HMI",
            source=a.ip, targets=[dev.ip], ports=[c.port],
            models=["ics.action_rate"], attack_ids=["T0806", "T0855"],
            check=f"ip.src == {a.ip} && ip.dst == {dev.ip} && {c.display_filter}", facts={"operations": c.ops}), out)


class FieldUpload(Variant):
    """A field device pushes a file of tens of kB to a peer controller on a non-ICS port."""

    key = "field_upload"

    @property
    def attacker(self) -> Host:
        return self.p.mbs[-1]

    def play(self) -> list[Record]:
        p, a, rng = self.p, self.attacker, self.rng
        victim = p.plcs[0]
        s = p.tcp(a, victim, 21, rng)
        out = s.handshake(self.t, 500_000)
        t = out[-1][0] + SEC
        size = rng.randrange(40_000, 90_000)
        sent = 0
        while sent < size:
            n = min(1400, size - sent)
            out += s.send(t, self.opaque(n))
            sent += n
            t = out[-1][0] + rng.randrange(2, 20) * 1_000_000
        out += s.ack(t, from_client=False)
        out += s.close(t + 50_000_000)
        return self.step(Step(
            "field_upload", f"A field device pushes {size:,} bytes to a controller on TCP 21",
            source=a.ip, targets=[victim.ip], ports=[21],
            models=["ics.role_contradiction", "net.data_volume"], attack_ids=["T0867"],
            check=f"ip.src == {a.ip} && ip.dst == {victim.ip} && tcp.dstport == 21",
            facts={"bytes": size}), out)


class Beacon(Variant):
    """A known office PC calls home overnight: TLS without SNI to one rare external server with a
    self-signed certificate, every 20-40 minutes, with requests and answers of steady size."""

    key = "beacon"
    C2 = "198.51.100.77"

    @property
    def attacker(self) -> Host:
        return self.p.ws[0]

    def play(self) -> list[Record]:
        p, a, rng = self.p, self.attacker, self.rng
        chain = [f.make_certificate("localhost", seed=p.shape.seed * 7 + 3, org="Unknown")]
        out: list[Record] = []
        t = self.t
        for _ in range(16):
            out += tls_conversation(p, rng, self.opaque, t, a, p.external(self.C2), 443, None, chain,
                                    rng.randrange(380, 420), rng.randrange(900, 1000),
                                    ciphers=f.TLS_CIPHERS_TOOL, rtt=40_000_000)
            t += rng.randrange(20, 40) * MINUTE
        return self.step(Step(
            "beacon", "TLS without SNI to a self-signed external server every 20-40 minutes overnight",
            source=a.ip, targets=[self.C2], ports=[443],
            models=["net.beacon", "tls.no_sni", "tls.self_signed"], attack_ids=["T0869", "T0885"],
            check=f"ip.src == {a.ip} && ip.dst == {self.C2}"), out)


class ArpSweep(Variant):
    """A laptop plugged into the office VLAN asks ARP for every address of its /24 in a minute."""

    key = "arp_sweep"

    @property
    def attacker(self) -> Host:
        return self.p.attacker

    def play(self) -> list[Record]:
        p, a, rng = self.p, self.attacker, self.rng
        zone = p.shape.zone(a.net)
        out: list[Record] = []
        t = self.t
        for i in range(1, 255):
            ip = f"{zone.prefix}.{i}"
            if ip == a.ip:
                continue
            out.append((t, f.arp_frame(1, a.macb, a.ipb, f.ip_bytes(ip), vlan=a.vlan)))
            h = p.by_ip.get(ip) or (p.routers[a.net] if ip == p.routers[a.net].ip else None)
            if h is not None:
                out.append((t + 300_000, f.arp_frame(2, h.macb, h.ipb, a.ipb, target_mac=a.macb, vlan=a.vlan)))
            t += rng.randrange(100, 400) * 1_000_000
        return self.step(Step(
            "arp_sweep", "A new laptop sweeps its subnet with ARP requests",
            source=a.ip, targets=[f"{zone.prefix}.{i}" for i in range(1, 255)], ports=[],
            models=["net.arp_sweep"], attack_ids=["T0846", "T0840"],
            check=f"arp.opcode == 1 && arp.src.proto_ipv4 == {a.ip}"), out)


VARIANTS: dict[str, type[Variant]] = {v.key: v for v in (SlowScan, Insider, FieldPeer, WriteFlood,
                                                          FieldUpload, Beacon, ArpSweep)}
# when each variant starts, in hours after the start of the detection capture (night for the
# insider and the beacon, office hours for the others)
START_H: dict[str, float] = {"slow_scan": 1.0, "insider": 2.5, "field_peer": 10.3, "write_flood": 11.2,
                             "field_upload": 14.6, "beacon": 0.5, "arp_sweep": 9.8}

__all__ = ["VARIANTS", "START_H", "Variant"]
