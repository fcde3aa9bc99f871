"""ICS traffic as endless streams (captures of N packets): fast SCADA polling of Modbus, S7,
DNP3 and EtherNet/IP devices, IEC 104 spontaneous reports, ENIP discovery broadcasts."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.actors import StreamActor, tagged
from plantwatch.core.synth.clock import MS, SEC, US
from plantwatch.core.synth.plant import Host, Plant


class ModbusPoller(StreamActor):
    """An HMI polling one Modbus device: reads in a fixed cycle, an occasional setpoint write."""

    kind = "modbus"

    def __init__(self, p: Plant, hmi: Host, dev: Host, period_ms: int = 150) -> None:
        super().__init__(p, f"mb:{dev.name}", p.t0)
        self.hmi, self.dev, self.period = hmi, dev, period_ms * MS
        self.regs = [self.rng.randrange(100, 4000) for _ in range(16)]

    def interactions(self) -> Iterator[list]:
        rng, trans = self.rng, self.rng.randrange(65536)
        cycle = ((3, 0, 16), (4, 100, 8), (3, 200, 10), (1, 0, 32))
        while True:
            s = self.p.tcp(self.hmi, self.dev, f.MODBUS_PORT, rng)
            yield s.handshake(self.t, 400 * US)
            self.t += 2 * MS
            for i in range(rng.randrange(1500, 4000)):
                trans = (trans + 1) & 0xFFFF
                rtt = rng.randrange(800, 4000) * US
                if rng.random() < 0.005:
                    reg, val = rng.randrange(300, 310), rng.randrange(1000)
                    yield tagged(s.exchange(self.t, f.modbus(trans, 1, f.mb_write_single_reg(reg, val)),
                                            f.modbus(trans, 1, f.mb_write_single_reg(reg, val)), rtt),
                                 "modbus_write")
                else:
                    fc, addr, cnt = cycle[i % 4]
                    if fc == 1:
                        resp = f.mb_read_bits_resp(1, [(rng.random() < 0.3) for _ in range(cnt)])
                    else:
                        k = rng.randrange(16)
                        self.regs[k] = (self.regs[k] + rng.randrange(-20, 21)) & 0xFFFF
                        resp = f.mb_read_regs_resp(fc, self.regs[:cnt])
                    yield s.exchange(self.t, f.modbus(trans, 1, f.mb_read_req(fc, addr, cnt)),
                                     f.modbus(trans, 1, resp), rtt)
                self.t += self.period + rng.randrange(-5, 6) * MS
            yield s.close(self.t)
            self.t += rng.randrange(1, 3) * SEC


class S7Poller(StreamActor):
    """The SCADA server reading process values from one S7 PLC over a long-lived connection."""

    kind = "s7"

    def __init__(self, p: Plant, plc: Host, period_ms: int = 100) -> None:
        super().__init__(p, f"s7:{plc.name}", p.t0)
        self.plc, self.period = plc, period_ms * MS
        self.base = [self.rng.uniform(5, 90) for _ in range(4)]

    def interactions(self) -> Iterator[list]:
        rng, p, pdu = self.rng, self.p, 0
        items = [(f.S7_AREA_DB, 10, 0, 16), (f.S7_AREA_DB, 20, 0, 4), (f.S7_AREA_FLAGS, 0, 0, 2)]
        while True:
            s = p.tcp(p.scada, self.plc, f.S7_PORT, rng)
            out = s.handshake(self.t, 300 * US)
            out += s.exchange(self.t + MS, f.cotp_cr(src_ref=5), f.cotp_cc(5, 0x4431))
            out += s.exchange(self.t + 5 * MS, f.s7_setup_comm(0xFF00), f.s7_setup_comm_ack(0xFF00))
            yield out
            self.t = out[-1][0] + 50 * MS
            for _ in range(rng.randrange(2000, 6000)):
                pdu = (pdu + 1) & 0xFFFF
                rtt = rng.randrange(2000, 6000) * US
                if rng.random() < 0.002:
                    yield tagged(s.exchange(self.t, f.s7_write_var(pdu, f.S7_AREA_DB, 30, 4, b"\x00\x01"),
                                            f.s7_write_var_ack(pdu), rtt), "s7_write")
                else:
                    vals = b"".join(struct.pack("!f", b + rng.gauss(0, 0.5)) for b in self.base)
                    yield tagged(s.exchange(self.t, f.s7_read_var(pdu, items),
                                            f.s7_read_var_ack(pdu, [vals, struct.pack("!HH", 0x0101, pdu),
                                                                    b"\x00\x01"]), rtt), "s7_read")
                self.t += self.period + rng.randrange(-3, 4) * MS
            yield s.close(self.t)
            self.t += rng.randrange(1, 3) * SEC


class Dnp3Poller(StreamActor):
    """The SCADA master polling one DNP3 outstation: event classes, an integrity poll every 50."""

    kind = "dnp3"

    def __init__(self, p: Plant, rtu: Host, addr: int, period_ms: int = 100) -> None:
        super().__init__(p, f"dnp3:{rtu.name}", p.t0)
        self.rtu, self.addr, self.period = rtu, addr, period_ms * MS

    def interactions(self) -> Iterator[list]:
        rng, p, seq = self.rng, self.p, 0
        while True:
            s = p.tcp(p.scada, self.rtu, f.DNP3_PORT, rng)
            yield s.handshake(self.t, 600 * US)
            self.t += 2 * MS
            for i in range(rng.randrange(3000, 8000)):
                seq = (seq + 1) & 0x0F
                integrity = i % 50 == 0
                req = f.dnp3_read_class(seq, (0,) if integrity else (1, 2, 3))
                vals = [rng.randrange(-3000, 3000) for _ in range(20 if integrity else rng.randrange(1, 5))]
                resp = f.dnp3_response_analog(seq, vals)
                yield s.exchange(self.t, f.dnp3(self.addr, 1, req),
                                 f.dnp3(1, self.addr, resp, master=False), rng.randrange(3, 12) * MS)
                self.t += self.period + rng.randrange(-5, 6) * MS
            yield s.close(self.t)
            self.t += rng.randrange(1, 3) * SEC


class Iec104Link(StreamActor):
    """An IEC 104 RTU reporting spontaneous measurements to the SCADA server (I-frames up,
    S-frame acknowledgements every 8, a general interrogation at connect)."""

    kind = "iec104"

    def __init__(self, p: Plant, rtu: Host, ca: int, mean_gap_s: float = 0.04) -> None:
        super().__init__(p, f"iec104:{rtu.name}", p.t0)
        self.rtu, self.ca, self.mean = rtu, ca, mean_gap_s

    def _meas(self, vs: int, vr: int, cot: int, ioa: int) -> bytes:
        el = struct.pack("<fB", self.rng.uniform(0, 400), 0)
        return f.iec104_i_frame(vs, vr, 13, cot, self.ca, ioa, el)

    def interactions(self) -> Iterator[list]:
        rng, p = self.rng, self.p
        while True:
            s = p.tcp(p.scada, self.rtu, f.IEC104_PORT, rng)
            out = s.handshake(self.t, 500 * US)
            out += s.exchange(self.t + MS, f.IEC104_STARTDT_ACT, f.IEC104_STARTDT_CON)
            t = out[-1][0] + 5 * MS
            # general interrogation: act, actcon, the values, actterm
            vs, vr = 0, 0
            out += s.send(t, f.iec104_i_frame(0, 0, 100, 6, self.ca, 0, b"\x14"))
            vr += 1
            t += 3 * MS
            out += s.send(t, f.iec104_i_frame(vs, vr, 100, 7, self.ca, 0, b"\x14"), False)
            vs += 1
            for ioa in range(1001, 1013):
                t += 400 * US
                out += s.send(t, self._meas(vs, vr, 20, ioa), False)
                vs += 1
            t += 400 * US
            out += s.send(t, f.iec104_i_frame(vs, vr, 100, 10, self.ca, 0, b"\x14"), False)
            vs += 1
            out += s.send(t + MS, f.iec104_s_frame(vs))
            yield out
            self.t = t + 20 * MS
            unacked = 0
            for _ in range(rng.randrange(5000, 15000)):
                out = s.send(self.t, self._meas(vs & 0x7FFF, vr, 3, 1001 + rng.randrange(12)), False)
                vs += 1
                unacked += 1
                if unacked == 8:
                    out += s.send(self.t + 2 * MS, f.iec104_s_frame(vs & 0x7FFF))
                    unacked = 0
                elif unacked % 2 == 0:
                    out += s.ack(self.t + 500 * US)
                yield out
                self.t += self.gap(self.mean)
            yield s.close(self.t)
            self.t += rng.randrange(1, 3) * SEC


class EnipPoller(StreamActor):
    """The SCADA server reading a CIP attribute from one ControlLogix (SendRRData)."""

    kind = "enip"

    def __init__(self, p: Plant, plc: Host, period_ms: int = 250) -> None:
        super().__init__(p, f"enip:{plc.name}", p.t0)
        self.plc, self.period = plc, period_ms * MS

    def interactions(self) -> Iterator[list]:
        rng, p = self.rng, self.p
        while True:
            s = p.tcp(p.scada, self.plc, f.ENIP_PORT, rng)
            handle = rng.getrandbits(32)
            out = s.handshake(self.t, 400 * US)
            out += s.exchange(self.t + MS, f.enip_register_session(0), f.enip(0x65, b"\x01\x00\x00\x00", handle))
            yield out
            self.t = out[-1][0] + 10 * MS
            for i in range(rng.randrange(1000, 3000)):
                ctx = struct.pack("<Q", i)
                inst = 100 + i % 3
                req = f.enip_send_rr_data(handle, f.cip_request(0x0E, 0x04, inst, 3), ctx)
                resp = f.enip_send_rr_data(handle, f.cip_response(0x0E, self.take(32)), ctx)
                yield s.exchange(self.t, req, resp, rng.randrange(1000, 3000) * US)
                self.t += self.period + rng.randrange(-5, 6) * MS
            yield s.close(self.t)
            self.t += rng.randrange(1, 3) * SEC


class EnipDiscovery(StreamActor):
    """The SCADA server's ListIdentity broadcast every 30 s, answered by every ENIP device."""

    kind = "enip"

    def __init__(self, p: Plant) -> None:
        super().__init__(p, "enip-discovery", p.t0)

    def interactions(self) -> Iterator[list]:
        p = self.p
        bcast = f.ip_bytes(f"{p.shape.zone(p.scada.net).prefix}.255")
        while True:
            sport = p.scada.port()
            out = [(self.t, f.udp_frame(p.scada.macb, f.BROADCAST_MAC, p.scada.ipb, bcast, sport,
                                        f.ENIP_PORT, f.enip_list_identity(), ip_id=p.scada.ipid(),
                                        vlan=p.scada.vlan), "enip_list_identity")]
            for i, plc in enumerate(p.enips):
                out.append(p.udp(self.t + (2 + i) * MS, plc, p.scada, f.ENIP_PORT, sport,
                                 f.enip_list_identity_resp(plc.ipb, serial=0xC0FFEE00 + i)))
            yield out
            self.t += 30 * SEC
