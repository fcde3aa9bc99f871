"""Office and server traffic as endless streams (captures of N packets): file share bulk reads,
HTTPS browsing, RDP sessions, name lookups, syslog and NTP, ARP, and failed connection probes."""

from __future__ import annotations

from collections.abc import Iterator

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.actors import StreamActor, tagged
from plantwatch.core.synth.clock import MS, SEC, US
from plantwatch.core.synth.plant import Host, Plant


class SmbClient(StreamActor):
    """A workstation reading (and now and then writing) files on the file server: SMB 3
    encrypted messages, 64 KiB reads cut into MSS segments (the bulk of the IT traffic)."""

    kind = "smb"

    def __init__(self, p: Plant, ws: Host, mean_gap_s: float = 20.0) -> None:
        super().__init__(p, f"smb:{ws.name}", p.t0)
        self.ws, self.mean = ws, mean_gap_s

    def interactions(self) -> Iterator[list]:
        rng, p = self.rng, self.p
        while True:
            s = p.tcp(self.ws, p.fs, f.SMB_PORT, rng, win_server=65535)
            sid = rng.getrandbits(64)
            out = s.handshake(self.t, 300 * US)
            out += s.exchange(self.t + MS, f.smb2_negotiate(0, rng.randbytes(16)),
                              f.smb2_negotiate_resp(0, p.fs.ipb * 4, system_time_ns=self.t))
            yield out
            self.t = out[-1][0] + 20 * MS
            for _ in range(rng.randrange(20, 60)):
                self.t += self.gap(self.mean)
                size = min(int(rng.lognormvariate(11.5, 1.0)), 8 << 20)
                upload = rng.random() < 0.1
                out = []
                t = self.t
                for off in range(0, max(size, 1), 65536):
                    chunk = min(65536, size - off) or 1
                    nonce = rng.randbytes(16)
                    small = f.smb2_encrypted(sid, nonce, self.take(120))
                    big = f.smb2_encrypted(sid, nonce, self.take(chunk + 80))
                    ex = s.exchange(t, big, small, 500 * US) if upload else s.exchange(t, small, big, 500 * US)
                    out += ex
                    t = ex[-1][0] + 100 * US
                yield out
                self.t = t
            yield s.close(self.t)
            self.t += rng.randrange(1, 10) * SEC


class TlsBrowser(StreamActor):
    """A workstation's HTTPS: a full TLS 1.2 conversation per visit, SNI in every ClientHello."""

    kind = "tls"

    def __init__(self, p: Plant, ws: Host, mean_gap_s: float = 15.0) -> None:
        super().__init__(p, f"tls:{ws.name}", p.t0)
        self.ws, self.mean = ws, mean_gap_s

    def interactions(self) -> Iterator[list]:
        rng, p = self.rng, self.p
        while True:
            self.t += self.gap(self.mean)
            if rng.random() < 0.15:
                server, sni, rtt = p.intranet, "intranet.plant.local", 500 * US
            else:
                server = p.sites[min(int(rng.expovariate(0.4)), len(p.sites) - 1)]
                sni, rtt = server.name, rng.randrange(8, 40) * MS
            s = p.tcp(self.ws, server, f.TLS_PORT, rng, win_server=65535)
            out = s.handshake(self.t, rtt)
            t = out[-1][0] + MS
            out += tagged(s.send(t, f.tls_client_hello(rng.randbytes(32), sni=sni, alpn=("h2", "http/1.1"))),
                          "tls_client_hello")
            t += rtt
            out += tagged(s.send(t, f.tls_server_flight(rng.randbytes(32), p.chains[sni],
                                                        session_id=rng.randbytes(32)), False),
                          "tls_server_hello")
            t = out[-1][0] + 2 * MS
            out += s.send(t, f.tls_client_finish(b"\x04" + rng.randbytes(64), self.take(40)))
            t += rtt
            out += s.send(t, f.tls_server_finish(self.take(40)), False)
            t = out[-1][0] + MS
            for _ in range(rng.randrange(1, 4)):
                out += s.exchange(t, f.tls_app_data(self.take(rng.randrange(300, 1500))),
                                  f.tls_app_data(self.take(int(rng.lognormvariate(9.5, 1.0)) + 100)), rtt)
                t = out[-1][0] + rng.randrange(5, 200) * MS
            out += s.close(t + rng.randrange(100, 2000) * MS, rtt=rtt)
            yield out
            self.t = out[-1][0]


class RdpOperator(StreamActor):
    """Remote desktop sessions from one client to a few servers: X.224 with an mstshash cookie,
    a TLS handshake (self-signed certificate, no SNI), then screen updates and input."""

    kind = "rdp"

    def __init__(self, p: Plant, client: Host, targets: list[Host], user: str) -> None:
        super().__init__(p, f"rdp:{client.name}", p.t0)
        self.client, self.targets, self.user = client, targets, user

    def interactions(self) -> Iterator[list]:
        rng, p = self.rng, self.p
        while True:
            server = self.targets[rng.randrange(len(self.targets))]
            s = p.tcp(self.client, server, f.RDP_PORT, rng, win_server=65535)
            out = s.handshake(self.t, 400 * US)
            out += tagged(s.exchange(self.t + MS, f.rdp_connection_request(self.user),
                                     f.rdp_connection_confirm()), "rdp_cookie")
            t = out[-1][0] + MS
            # tshark 4.0 shows these as TPKT continuations; our decoder may see TLS: tagged apart
            out += tagged(s.send(t, f.tls_client_hello(rng.randbytes(32), sni=None)), "rdp_client_hello")
            out += s.send(t + MS, f.tls_server_flight(rng.randbytes(32), p.rdp_cert), False)
            t = out[-1][0] + MS
            out += s.send(t, f.tls_client_finish(b"\x04" + rng.randbytes(64), self.take(40)))
            out += s.send(t + MS, f.tls_server_finish(self.take(40)), False)
            yield out
            self.t = out[-1][0] + 10 * MS
            end = self.t + rng.randrange(60, 240) * SEC
            n = 0
            while self.t < end:
                out = s.send(self.t, f.tls_app_data(self.take(rng.randrange(200, 1400))), False)
                n += 1
                if n % 3 == 0:
                    out += s.send(self.t + 2 * MS, f.tls_app_data(self.take(rng.randrange(40, 120))))
                elif n % 2 == 0:
                    out += s.ack(self.t + MS)
                yield out
                self.t += rng.randrange(30, 120) * MS
            yield s.close(self.t)
            self.t += rng.randrange(5, 30) * SEC


class DnsClient(StreamActor):
    """A workstation's name lookups at the domain controller (A queries, a few NXDOMAIN)."""

    kind = "dns"

    def __init__(self, p: Plant, ws: Host, mean_gap_s: float = 2.0) -> None:
        super().__init__(p, f"dns:{ws.name}", p.t0)
        self.ws, self.mean = ws, mean_gap_s

    def interactions(self) -> Iterator[list]:
        rng, p = self.rng, self.p
        while True:
            self.t += self.gap(self.mean)
            name = p.names[min(int(rng.expovariate(0.25)), len(p.names) - 1)]
            ident, sport = rng.randrange(65536), self.ws.port()
            if rng.random() < 0.05:
                name, answers, rcode = f"wpad.{self.ws.name.lower()}.plant.local", [], 3
            else:
                answers, rcode = [bytes([10, 10, 10, rng.randrange(2, 250)])], 0
            yield [(*p.udp(self.t, self.ws, p.dc, sport, f.DNS_PORT, f.dns_query(ident, name)), "dns_query"),
                   (*p.udp(self.t + rng.randrange(200, 900) * US, p.dc, self.ws, f.DNS_PORT, sport,
                           f.dns_response(ident, name, answers, rcode=rcode)), "dns_response")]


class Syslog(StreamActor):
    """OT devices' syslog messages to the log server (UDP 514), with NTP polls among them."""

    kind = "udp"

    def __init__(self, p: Plant, mean_gap_s: float = 0.05) -> None:
        super().__init__(p, "syslog", p.t0)
        self.mean = mean_gap_s
        self.senders = [p.scada, p.hist, *p.hmis, *p.plcs[:4]]

    def interactions(self) -> Iterator[list]:
        rng, p = self.rng, self.p
        msgs = ("alarm acknowledged by operator", "tag quality changed to GOOD", "user logon",
                "historian buffer flushed", "communication restored with station")
        while True:
            self.t += self.gap(self.mean)
            h = self.senders[rng.randrange(len(self.senders))]
            if rng.random() < 0.1:
                yield [p.udp(self.t, h, p.dc, f.NTP_PORT, f.NTP_PORT, f.ntp(self.t)),
                       p.udp(self.t + 300 * US, p.dc, h, f.NTP_PORT, f.NTP_PORT,
                             f.ntp(self.t + 300 * US, server=True, origin_ns=self.t))]
            else:
                text = f"<134>1 - {h.name} app - - - {msgs[rng.randrange(len(msgs))]} #{rng.randrange(10**6)}"
                yield [p.udp(self.t, h, p.syslog, 514, 514, text.encode("ascii"))]


class ArpTraffic(StreamActor):
    """ARP requests for peers on the same subnet (or the gateway), each answered."""

    kind = "arp"

    def __init__(self, p: Plant, mean_gap_s: float = 0.06) -> None:
        super().__init__(p, "arp", p.t0)
        self.mean = mean_gap_s
        self.by_net: dict[str, list[Host]] = {}
        for h in p.internal:
            self.by_net.setdefault(h.net, []).append(h)

    def interactions(self) -> Iterator[list]:
        rng = self.rng
        hosts = self.p.internal
        while True:
            self.t += self.gap(self.mean)
            a = hosts[rng.randrange(len(hosts))]
            peers = self.by_net[a.net]
            b = peers[rng.randrange(len(peers))]
            if b is a:
                continue
            yield [(self.t, f.arp_frame(1, a.macb, a.ipb, b.ipb, vlan=a.vlan), "arp_request"),
                   (self.t + 150 * US, f.arp_frame(2, b.macb, b.ipb, a.ipb, target_mac=a.macb, vlan=b.vlan),
                    "arp_reply")]


class Prober(StreamActor):
    """The monitoring server checking services: closed ports answer RST (refused); a
    decommissioned device never answers (SYN and two retransmissions)."""

    kind = "failed"

    def __init__(self, p: Plant, unanswered: bool, mean_gap_s: float) -> None:
        super().__init__(p, f"probe:{unanswered}", p.t0)
        self.unanswered, self.mean = unanswered, mean_gap_s

    def interactions(self) -> Iterator[list]:
        rng, p = self.rng, self.p
        targets = [p.dc, p.fs, p.intranet, p.hist, p.scada, *p.ws[:10]]
        while True:
            self.t += self.gap(self.mean)
            if self.unanswered:
                s = p.tcp(p.nms, p.gone, 22, rng)
                out = tagged(s.unanswered(self.t), "syn_unanswered")
            else:
                s = p.tcp(p.nms, targets[rng.randrange(len(targets))], (8080, 5900)[rng.randrange(2)], rng)
                out = tagged(s.refused(self.t, 600 * US), "syn_refused", 1)
            yield out
            self.t = out[-1][0]
