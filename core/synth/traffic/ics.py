"""ICS traffic hour by hour: SCADA pollers on long-lived connections (S7 from the SCADA server,
Modbus from the HMI) and the engineering workstation's diagnostics and planned download."""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterable

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.actors import WindowActor
from plantwatch.core.synth.clock import DAY, HOUR, MINUTE, SEC, hour_of
from plantwatch.core.synth.plant import Host, Plant, Record


class Poller(WindowActor):
    """A SCADA client polling one device over a long-lived TCP connection every poll period.

    So that each capture file is self-contained (tshark flags a connection that starts mid-stream),
    the connection is closed just before a capture-file boundary and reopened just after it.
    """

    def __init__(self, p: Plant, key: str, start: int, period_s: float) -> None:
        super().__init__(p, key)
        self.next = start + self.rng.randrange(SEC)
        self.last = start - DAY
        self.period = int(period_s * SEC)
        self.s: f.TcpSession | None = None

    def open(self, t: int) -> list[Record]:
        raise NotImplementedError

    def poll(self, t: int) -> list[Record]:
        raise NotImplementedError

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        out: list[Record] = []
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
            self.next += self.period + self.rng.randrange(-50, 50) * 1_000_000
        return out


class S7Poller(Poller):
    """The SCADA server reading process values (with a daily swing) and status from one S7 PLC."""

    def __init__(self, p: Plant, scada: Host, plc: Host, start: int) -> None:
        super().__init__(p, f"s7poll:{plc.ip}", start, p.shape.poll_s["s7"])
        self.scada, self.plc = scada, plc
        self.pdu = 0
        self.base = [self.rng.uniform(2, 90) for _ in range(4)]

    def open(self, t: int) -> list[Record]:
        self.s = s = self.p.tcp(self.scada, self.plc, f.S7_PORT, self.rng)
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

    def __init__(self, p: Plant, hmi: Host, dev: Host, start: int) -> None:
        super().__init__(p, f"mbpoll:{dev.ip}", start, p.shape.poll_s["modbus"])
        self.hmi, self.dev = hmi, dev
        self.trans = self.rng.randrange(1000)
        self.regs = [self.rng.randrange(200, 3000) for _ in range(10)]

    def open(self, t: int) -> list[Record]:
        self.s = self.p.tcp(self.hmi, self.dev, f.MODBUS_PORT, self.rng)
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
    """An S7 client's connection: TCP, COTP connect, S7 setup communication."""
    s = p.tcp(client, plc, f.S7_PORT, rng)
    out = s.handshake(t, 400_000)
    out += s.exchange(out[-1][0] + 1_000_000, f.cotp_cr(src_ref=rng.randrange(1, 0x7FFF)), f.cotp_cc(1, 0x4432))
    out += s.exchange(out[-1][0] + 2_000_000, f.s7_setup_comm(0), f.s7_setup_comm_ack(0))
    return s, out


SZL_MODE = [struct.pack("!HHBBBB", 0x0000, 0x5100, 0x00, 0x08, 0x00, 0x00) + bytes(14)]
SZL_COMPONENTS = [struct.pack("!H", i) + name.ljust(32, b"\x00") for i, name in
                  ((1, b"Line-3 Pasteuriser"), (2, b"CPU 1516-3 PN/DP"), (3, b"Food Plant"))]
CPU_ORDER_NUMBER = "6ES7 516-3AN01-0AB0"


class EngineeringWorkstation(WindowActor):
    """Online diagnostics of the PLCs in office hours, and one planned download."""

    def __init__(self, p: Plant, ews: Host, plcs: list[Host], maintenance: int | None) -> None:
        super().__init__(p, "ews")
        self.ews, self.plcs = ews, plcs
        self.maintenance = maintenance
        self.pdu = 0

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        out: list[Record] = []
        p, rng = self.p, self.rng
        if p.shape.rhythm.office_hours(t0) and self.plcs and rng.random() < 0.35:
            t = t0 + rng.randrange(HOUR - 10 * MINUTE)
            plc = rng.choice(self.plcs)
            s, rec = s7_connect(p, rng, t, self.ews, plc)
            out += rec
            t = rec[-1][0] + SEC
            for szl, idx, ent in ((0x0011, 0, f.szl_0011_entries(CPU_ORDER_NUMBER, fw=(2, 8))),
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
        if self.maintenance is not None and t0 <= self.maintenance < t1 and self.plcs:
            out += self._download(self.maintenance, self.plcs[0])
        return out

    def _download(self, t: int, plc: Host) -> list[Record]:
        """Planned change in a maintenance window: stop, download FC12, activate, restart."""
        p, rng = self.p, self.rng
        s, out = s7_connect(p, rng, t, self.ews, plc)
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
