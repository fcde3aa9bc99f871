"""Office and server traffic hour by hour: Windows hosts (DNS, NTP, DHCP, NetBIOS, SaaS over
HTTPS, LDAPS, file share reads), the IT admin's RDP round, infrastructure (upstream NTP, ARP) and
the historian's archive pulls."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.actors import WindowActor
from plantwatch.core.synth.clock import DAY, HOUR, MINUTE, SEC, hour_of
from plantwatch.core.synth.plant import Host, Plant, Record


def tls_conversation(p: Plant, rng: random.Random, opaque: Callable[[int], bytes], ts: int, client: Host, server: Host,
                     port: int, sni: str | None, chain: list[bytes], up: int, down: int,
                     ciphers: tuple[int, ...] = f.TLS_CIPHERS_BROWSER, rtt: int = 20_000_000) -> list[Record]:
    """A whole TLS 1.2 connection: handshake, `up`/`down` bytes of application data, FIN close.
    `opaque(n)` gives the stand-in ciphertext."""
    s = p.tcp(client, server, port, rng, win_server=65535)
    out = s.handshake(ts, rtt)
    t = out[-1][0] + 1_000_000
    out += s.send(t, f.tls_client_hello(rng.randbytes(32), sni=sni, ciphers=ciphers,
                                        alpn=("h2", "http/1.1") if sni else ()))
    t += rtt
    out += s.send(t, f.tls_server_flight(rng.randbytes(32), chain, session_id=rng.randbytes(32)), False)
    t = out[-1][0] + 2_000_000
    out += s.send(t, f.tls_client_finish(b"\x04" + rng.randbytes(64), opaque(40)))
    t += rtt
    out += s.send(t, f.tls_server_finish(opaque(40)), False)
    t = out[-1][0] + 1_000_000
    if up:
        out += s.send(t, f.tls_app_data(opaque(up)))
        t = out[-1][0] + rtt
    if down:
        out += s.send(t, f.tls_app_data(opaque(down)), False)
        t = out[-1][0] + 1_000_000
    out += s.ack(t)
    out += s.close(t + rng.randrange(50, 3000) * 1_000_000, from_client=True, rtt=rtt)
    return out


def rdp_data(ciphertext: bytes) -> bytes:
    """TLS records sized to fill one TCP segment each (1455 + 5 = MSS), so every segment on 3389
    starts with a record header: tshark 4.0 gives RDP's TLS to TPKT, which would otherwise take a
    segment starting inside a record header (03 03 ...) for a TPKT header."""
    return f.tls_app_data(ciphertext, max_record=1455)


def chain_for(name: str, seed: int, ca_name: str) -> list[bytes]:
    """A leaf certificate for `name` signed by the plant's public CA, and the CA's certificate."""
    k = sum(name.encode()) % 1000
    leaf = f.make_certificate(name, seed=seed * 1000 + k, issuer_cn=ca_name, issuer_seed=seed * 1000 + 999,
                              san=(name,))
    ca = f.make_certificate(ca_name, seed=seed * 1000 + 999, org="Demo Trust Services")
    return [leaf, ca]


def rdp_handshake(p: Plant, actor: WindowActor, s: f.TcpSession, t: int, user: str, server: Host) -> list[Record]:
    """X.224 with the user's mstshash cookie, then TLS with the server's self-signed certificate."""
    rng = actor.rng
    o = s.exchange(t, f.rdp_connection_request(user), f.rdp_connection_confirm())
    o += s.exchange(o[-1][0] + 2_000_000, f.tls_client_hello(rng.randbytes(32)),
                    f.tls_server_flight(rng.randbytes(32), [f.make_certificate(
                        server.name, seed=p.shape.seed * 50 + server.ipb[-1])]))
    o += s.exchange(o[-1][0] + 2_000_000, f.tls_client_finish(b"\x04" + rng.randbytes(64), actor.opaque(40)),
                    f.tls_server_finish(actor.opaque(40)))
    return o


class WindowsHost(WindowActor):
    """DNS and NTP to the domain controller; NetBIOS name queries; daily DHCP renewal for
    the DHCP clients; the office user's SaaS, file share and directory traffic."""

    def __init__(self, p: Plant, host: Host, office_user: bool, dhcp: bool) -> None:
        super().__init__(p, f"win:{host.ip}")
        rhythm = p.shape.rhythm
        self.h = host
        self.office_user = office_user
        self.dhcp = dhcp
        self.dns_id = self.rng.randrange(65536)
        self.arrive = self.rng.uniform(*rhythm.arrive_h)
        self.leave = self.rng.uniform(*rhythm.leave_h)
        self.ntp_offset = self.rng.randrange(HOUR)
        self.smb_guid = self.rng.randbytes(16)

    def _dns(self, t: int, name: str, addr: str, upstream: bool) -> list[Record]:
        p, h, rng = self.p, self.h, self.rng
        self.dns_id = (self.dns_id + 1) & 0xFFFF
        sport = h.port()
        out = [p.udp(t, h, p.dc, sport, 53, f.dns_query(self.dns_id, name))]
        t2 = t + rng.randrange(200_000, 900_000)
        if upstream:
            up = p.external(p.shape.upstream_dns)
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
        shape = p.shape
        domain, seed, ca = shape.domain, shape.seed, shape.ca_name
        out: list[Record] = []
        hr = hour_of(t0)
        day_start = t0 - t0 % DAY
        present = shape.rhythm.office_hours(t0) or not self.office_user
        t_ntp = t0 + self.ntp_offset
        out.append(p.udp(t_ntp, h, p.dc, 123, 123, f.ntp(t_ntp)))
        out.append(p.udp(t_ntp + 400_000, p.dc, h, 123, 123, f.ntp(t_ntp + 400_000, server=True, origin_ns=t_ntp)))
        if self.dhcp and int(hr) == int(self.arrive) and shape.rhythm.is_workday(t0):  # boot: DHCP, NetBIOS
            t = day_start + int(self.arrive * HOUR)
            xid = rng.getrandbits(32)
            out.append(p.udp(t, h, p.dc, 68, 67, f.dhcp(f.DHCP_REQUEST, xid, h.macb, client_ip=h.ipb, hostname=h.name)))
            out.append(p.udp(t + 2_000_000, p.dc, h, 67, 68, f.dhcp(
                f.DHCP_ACK, xid, h.macb, client_ip=h.ipb, your_ip=h.ipb, server_id=p.dc.ipb, lease=8 * 86400,
                subnet_mask="255.255.255.0", router=p.routers[h.net].ipb, dns=p.dc.ipb, domain=domain)))
            nb_id = rng.randrange(65536)
            bcast = f"{shape.zone(h.net).prefix}.255"
            out.append(p.broadcast_udp(t + 3 * SEC, h, bcast, 137, 137, f.nbns_query(nb_id, p.fs.name)))
            out.append(p.udp(t + 3 * SEC + 700_000, p.fs, h, 137, 137, f.nbns_response(nb_id, p.fs.name, p.fs.ipb)))
        # internal name lookups (every Windows host, day and night)
        for _ in range(rng.randrange(1, 4)):
            t = t0 + rng.randrange(HOUR)
            target = rng.choice([p.dc, p.fs, p.scada, p.hist, p.ews] if shape.zone(h.net).kind == "ot"
                                else [p.dc, p.fs, p.jump])
            out += self._dns(t, f"{target.name.lower()}.{domain}", target.ip, False)
        if not self.office_user:
            return out
        if not present:
            t = t0 + rng.randrange(HOUR - MINUTE)
            if rng.random() < 0.3 and not p.near_boundary(t, 10 * MINUTE):  # a PC left on checks in
                name, addr = shape.sites[4]
                out += self._dns(t, name, addr, True)
                out += tls_conversation(p, rng, self.opaque, t + 30_000_000, h, p.external(addr, name), 443,
                                        name, chain_for(name, seed, ca), 900, 2500)
            return out
        # office hours: SaaS over HTTPS with SNI
        for _ in range(rng.randrange(3, 8)):
            t = t0 + rng.randrange(HOUR - MINUTE)
            name, addr = rng.choice(shape.sites)
            out += self._dns(t, name, addr, rng.random() < 0.2)
            out += tls_conversation(p, rng, self.opaque, t + 30_000_000, h, p.external(addr, name), 443, name,
                                    chain_for(name, seed, ca), rng.randrange(600, 3000),
                                    rng.randrange(1000, 12000))
        # directory (LDAPS) and file share (SMB2 reads)
        for _ in range(rng.randrange(1, 3)):
            t = t0 + rng.randrange(HOUR - MINUTE)
            dc_name = f"{p.dc.name.lower()}.{domain}"
            out += tls_conversation(p, rng, self.opaque, t, h, p.dc, 636, dc_name,
                                    chain_for(dc_name, seed, ca), 400, 1200, rtt=400_000)
        if rng.random() < 0.7:
            t = t0 + rng.randrange(HOUR - 5 * MINUTE)
            s = p.tcp(h, p.fs, f.SMB_PORT, rng, win_server=65535)
            o = s.handshake(t)
            o += s.exchange(o[-1][0] + 500_000, f.smb2_negotiate(0, self.smb_guid),
                            f.smb2_negotiate_resp(0, f"{p.fs.name}-GUID-000001".encode(), system_time_ns=t),
                            rtt=700_000)
            sid = 0x0000400000000000 | rng.getrandbits(32)
            fid = rng.randbytes(16)
            tt = o[-1][0] + 5_000_000
            for mid in range(1, rng.randrange(3, 9)):  # reads of an open document
                n = rng.randrange(512, 8192)
                o += s.exchange(tt, f.smb2_read(mid, sid, 5, fid, (mid - 1) * 8192, n),
                                f.smb2_read_resp(mid, sid, 5, self.opaque(n)), rtt=900_000)
                tt = o[-1][0] + rng.randrange(1, 60) * SEC
            o += s.close(tt)
            out += o
        return out


class JumpHost(WindowActor):
    """The IT admin: RDP as a domain admin to servers on working-day mornings (normal here)."""

    def __init__(self, p: Plant, jump: Host, targets: list[Host], user: str) -> None:
        super().__init__(p, "jump")
        self.jump, self.targets, self.user = jump, targets, user

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        p, rng = self.p, self.rng
        rhythm = p.shape.rhythm
        if not rhythm.is_workday(t0) or int(hour_of(t0)) != rhythm.admin_hour:
            return ()
        out: list[Record] = []
        t = t0 + rng.randrange(5, 20) * MINUTE
        for target in self.targets:
            qid, sport = rng.randrange(65536), self.jump.port()
            name = f"{target.name.lower()}.{p.shape.domain}"
            o = [p.udp(t - 40_000_000, self.jump, p.dc, sport, 53, f.dns_query(qid, name)),
                 p.udp(t - 39_500_000, p.dc, self.jump, 53, sport, f.dns_response(qid, name, [target.ip], ttl=1200))]
            s = p.tcp(self.jump, target, f.RDP_PORT, rng, win_server=65535)
            o += s.handshake(t)
            o += rdp_handshake(p, self, s, o[-1][0] + 500_000, self.user, target)
            tt = o[-1][0] + SEC
            end = tt + rng.randrange(8, 25) * MINUTE
            while tt < end:  # keystrokes and mouse up, screen updates down (thinned)
                o += s.exchange(tt, rdp_data(self.opaque(rng.randrange(60, 400))),
                                rdp_data(self.opaque(rng.randrange(500, 9000))), rtt=1_500_000)
                tt = o[-1][0] + rng.randrange(10, 40) * SEC
            o += s.close(tt)
            out += o
            t = tt + rng.randrange(2, 10) * MINUTE
        return out


class Infrastructure(WindowActor):
    """The domain controller's own upstream NTP, and the router refreshing its ARP cache."""

    def __init__(self, p: Plant) -> None:
        super().__init__(p, "infra")

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        p, rng = self.p, self.rng
        out: list[Record] = []
        t = t0 + rng.randrange(HOUR)
        pool = p.external(p.shape.ntp_pool)
        out.append(p.udp(t, p.dc, pool, 123, 123, f.ntp(t)))
        out.append(p.udp(t + 15_000_000, pool, p.dc, 123, 123, f.ntp(t + 15_000_000, server=True, origin_ns=t, stratum=3)))
        for h in p.internal:
            if rng.random() < 0.25:
                r = p.routers[h.net]
                t = t0 + rng.randrange(HOUR)
                out.append((t, f.arp_frame(1, r.macb, r.ipb, h.ipb, vlan=h.vlan)))
                out.append((t + 300_000, f.arp_frame(2, h.macb, h.ipb, r.ipb, target_mac=r.macb, vlan=h.vlan)))
        return out


class Historian(WindowActor):
    """The historian pulls SCADA archive segments from a share every five minutes (SMB2 READ)."""

    def __init__(self, p: Plant, start: int) -> None:
        super().__init__(p, "historian")
        self.next = start + 30 * SEC

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        p, rng = self.p, self.rng
        out: list[Record] = []
        while self.next < t1:
            t = self.next
            self.next += 5 * MINUTE + rng.randrange(-5, 5) * SEC
            if p.near_boundary(t, MINUTE):
                continue
            s = p.tcp(p.hist, p.scada, f.SMB_PORT, rng, win_server=65535)
            o = s.handshake(t)
            o += s.exchange(o[-1][0] + 500_000, f.smb2_negotiate(0, b"HIST01-GUID-0001"),
                            f.smb2_negotiate_resp(0, b"WINCC01-GUID-001", system_time_ns=t), rtt=600_000)
            sid = 0x0000500000000000 | rng.getrandbits(32)
            n = rng.randrange(3000, 9000)
            o += s.exchange(o[-1][0] + 3_000_000, f.smb2_read(1, sid, 3, b"WinCC-archive-01", 0, n),
                            f.smb2_read_resp(1, sid, 3, self.opaque(n)), rtt=2_000_000)
            o += s.close(o[-1][0] + 50_000_000)
            out += o
        return out
