"""One client's conversation with one field device in the device's own protocol: the routine
poll a SCADA master or HMI runs, and the operations an engineer (or an attacker) performs:
identify the device, read, write, stop or reset it, download to it.

`CONVERSATIONS` maps a plant's field protocol ("s7", "modbus", "dnp3", "enip", "iec104") to its
class (core/synth/traffic/field_poll.py); core/synth/traffic/field_cip_iec104.py holds CIP and IEC 104. Every operation appends what it did
to `ops` ({"proto", "target", "op", "class"}: the ground truth's facts, with plantwatch's
protocol name and the operation's name and class as core/decode/ics.py classifies it).
"""

from __future__ import annotations

import random
import struct

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.clock import MS, SEC
from plantwatch.core.synth.plant import Host, Plant, Record
from plantwatch.core.synth.traffic.ics import CPU_ORDER_NUMBER, SZL_MODE, s7_connect

# a field device's identity answers by vendor (consistent with its OUI in core/synth/plant.py)
MODBUS_IDENTITY = {"Schneider": (b"Schneider Electric", b"BMX P34 2020", b"v3.20"),
                   "ABB": (b"ABB", b"AC500 PM573-ETH", b"2.8.3"),
                   "Rockwell": (b"Rockwell Automation", b"Micro850 2080-LC50", b"12.011")}
DNP3_IDENTITY = ((252, "SEL"), (250, "SEL-3530 RTAC"), (242, "R148-V2"))


class Conversation:
    """A TCP conversation of `client` with `dev`; subclasses speak one protocol."""

    proto = ""      # plantwatch's protocol name of the device's operations
    port = 0
    display_filter = ""   # tshark's name of the protocol

    def __init__(self, p: Plant, rng: random.Random, client: Host, dev: Host) -> None:
        self.p, self.rng, self.client, self.dev = p, rng, client, dev
        self.s: f.TcpSession | None = None
        self.ops: list[dict] = []

    def _op(self, name: str, cls: str) -> None:
        op = {"proto": self.proto, "target": self.dev.ip, "op": name, "class": cls}
        if op not in self.ops:
            self.ops.append(op)

    def rtt(self) -> int:
        return self.rng.randrange(2, 12) * MS

    def ex(self, t: int, request: bytes, response: bytes) -> list[Record]:
        assert self.s is not None
        return self.s.exchange(t, request, response, rtt=self.rtt())

    def open(self, t: int) -> list[Record]:
        self.s = self.p.tcp(self.client, self.dev, self.port, self.rng)
        return self.s.handshake(t, 400_000)

    def close(self, t: int) -> list[Record]:
        assert self.s is not None
        return self.s.close(t)

    def poll(self, t: int) -> list[Record]:
        raise NotImplementedError

    def identify(self, t: int) -> list[Record]:
        raise NotImplementedError

    def read(self, t: int) -> list[Record]:
        raise NotImplementedError

    def write(self, t: int, i: int = 0) -> list[Record]:
        raise NotImplementedError

    def stop(self, t: int) -> list[Record]:
        raise NotImplementedError

    def download(self, t: int) -> list[Record]:
        """A program or file download; [] when the protocol has none the plant would use."""
        return []


class S7Conversation(Conversation):
    proto, port, display_filter = "s7comm", f.S7_PORT, "s7comm"

    def __init__(self, p: Plant, rng: random.Random, client: Host, dev: Host) -> None:
        super().__init__(p, rng, client, dev)
        self.pdu = rng.randrange(0x100, 0x7000)

    def _pdu(self) -> int:
        self.pdu = (self.pdu + 1) & 0xFFFF
        return self.pdu

    def open(self, t: int) -> list[Record]:
        self.s, out = s7_connect(self.p, self.rng, t, self.client, self.dev)
        return out

    def poll(self, t: int) -> list[Record]:
        n = self._pdu()
        return self.ex(t, f.s7_read_var(n, [(f.S7_AREA_DB, 10, 0, 16)]), f.s7_read_var_ack(n, [self.rng.randbytes(16)]))

    def identify(self, t: int) -> list[Record]:
        out: list[Record] = []
        for szl, ent in ((0x0011, f.szl_0011_entries(CPU_ORDER_NUMBER, fw=(2, 8))), (0x0424, SZL_MODE)):
            n = self._pdu()
            out += self.ex(out[-1][0] + SEC if out else t, f.s7_szl_read(n, szl), f.s7_szl_response(n, szl, 0, ent))
        self._op("Read SZL", "DISCOVER")
        return out

    def read(self, t: int) -> list[Record]:
        self._op("Read Var", "READ")
        return self.poll(t)

    def write(self, t: int, i: int = 0) -> list[Record]:
        n = self._pdu()
        self._op("Write Var", "ACTION")
        return self.ex(t, f.s7_write_var(n, f.S7_AREA_DB, 20, 2 * (i % 8), struct.pack("!H", self.rng.randrange(65536))),
                       f.s7_write_var_ack(n))

    def stop(self, t: int) -> list[Record]:
        n = self._pdu()
        self._op("PLC Stop", "ACTION")
        return self.ex(t, f.s7_plc_stop(n), f.s7_plc_stop_ack(n))

    def download(self, t: int) -> list[Record]:
        n = self._pdu()
        self._op("Request Download", "REPROGRAM")
        return self.ex(t, f.s7_request_download(n, "OB", 35), f.s7_request_download_ack(n))


class ModbusConversation(Conversation):
    proto, port, display_filter = "modbus", f.MODBUS_PORT, "modbus"

    def __init__(self, p: Plant, rng: random.Random, client: Host, dev: Host) -> None:
        super().__init__(p, rng, client, dev)
        self.trans = rng.randrange(1000)
        self.regs = [rng.randrange(200, 3000) for _ in range(10)]

    def _req(self, t: int, req: bytes, resp: bytes) -> list[Record]:
        self.trans = (self.trans + 1) & 0xFFFF
        return self.ex(t, f.modbus(self.trans, 1, req), f.modbus(self.trans, 1, resp) if resp else b"")

    def poll(self, t: int) -> list[Record]:
        self.regs = [max(0, r + self.rng.randrange(-5, 6)) for r in self.regs]
        return self._req(t, f.mb_read_req(3, 0, 10), f.mb_read_regs_resp(3, self.regs))

    def identify(self, t: int) -> list[Record]:
        vendor, product, version = MODBUS_IDENTITY.get(self.dev.vendor, MODBUS_IDENTITY["Schneider"])
        out = self._req(t, f.mb_read_device_id(1, 0), f.mb_read_device_id_resp([(0, vendor), (1, product), (2, version)]))
        out += self._req(out[-1][0] + SEC, f.mb_report_server_id(), f.mb_report_server_id_resp(b"\x42" + product[:8]))
        self._op("Read Device ID", "DISCOVER")
        return out

    def read(self, t: int) -> list[Record]:
        self._op("Read Holding Registers", "READ")
        return self.poll(t)

    def write(self, t: int, i: int = 0) -> list[Record]:
        req = f.mb_write_single_reg(i % 16, self.rng.randrange(65536))
        self._op("Write Single Register", "ACTION")
        return self._req(t, req, req)

    def stop(self, t: int) -> list[Record]:
        # diagnostics "force listen only mode": the device stops answering (no response)
        self._op("Diagnostics: Force Listen Only Mode", "ACTION")
        return self._req(t, b"\x08\x00\x04\x00\x00", b"")


class Dnp3Conversation(Conversation):
    """A DNP3 master (link address 1) and one outstation: event polls of classes 1-3, an
    integrity poll (classes 0-3) at connect and every 20 polls, unsolicited responses confirmed."""

    proto, port, display_filter = "dnp3", f.DNP3_PORT, "dnp3"

    def __init__(self, p: Plant, rng: random.Random, client: Host, dev: Host) -> None:
        super().__init__(p, rng, client, dev)
        self.addr = 10 + int(dev.ip.rsplit(".", 1)[1])
        self.seq = self.useq = 0
        self.tseq = [0, 0]   # transport sequence of master and outstation
        self.polls = 0
        self.values = [rng.randrange(-3000, 3000) for _ in range(16)]

    def _link(self, app: bytes, master: bool) -> bytes:
        i = 0 if master else 1
        self.tseq[i] = (self.tseq[i] + 1) & 0x3F
        if master:
            return f.dnp3(self.addr, 1, app, master=True, transport_seq=self.tseq[i])
        return f.dnp3(1, self.addr, app, master=False, transport_seq=self.tseq[i])

    def _req(self, t: int, func: int, objs: bytes, answer: bytes) -> list[Record]:
        self.seq = (self.seq + 1) & 0x0F
        return self.ex(t, self._link(f.dnp3_app(self.seq, func, objs), True),
                       self._link(f.dnp3_response(self.seq, answer), False))

    def open(self, t: int) -> list[Record]:
        out = super().open(t)
        self.polls = 0
        return out + self.poll(out[-1][0] + 5 * MS)

    def poll(self, t: int) -> list[Record]:
        rng = self.rng
        self.values = [v + rng.randrange(-20, 21) for v in self.values]
        integrity = self.polls % 20 == 0
        self.polls += 1
        if integrity:
            self.seq = (self.seq + 1) & 0x0F
            out = self.ex(t, self._link(f.dnp3_read_class(self.seq, (0, 1, 2, 3)), True),
                          self._link(f.dnp3_response_analog(self.seq, self.values), False))
        else:
            k = rng.randrange(0, 3)
            events = f.dnp3_analog_events([(i, self.values[i]) for i in sorted(rng.sample(range(16), k))]) if k else b""
            self.seq = (self.seq + 1) & 0x0F
            out = self.ex(t, self._link(f.dnp3_read_class(self.seq, (1, 2, 3)), True),
                          self._link(f.dnp3_response(self.seq, events), False))
        if rng.random() < 0.1:  # a change reported by the outstation on its own
            assert self.s is not None
            self.useq = (self.useq + 1) & 0x0F
            tt = out[-1][0] + rng.randrange(100, 900) * MS
            objs = f.dnp3_binary_events([(rng.randrange(8), rng.random() < 0.5)])
            out += self.s.send(tt, self._link(f.dnp3_response(self.useq, objs, unsolicited=True), False), False)
            out += self.s.send(out[-1][0] + self.rtt(), self._link(f.dnp3_confirm(self.useq, True), True))
        return out

    def identify(self, t: int) -> list[Record]:
        self.seq = (self.seq + 1) & 0x0F
        self._op("Read Device Attributes", "DISCOVER")
        return self.ex(t, self._link(f.dnp3_app(self.seq, 1, f.dnp3_all_attributes()), True),
                       self._link(f.dnp3_response_device_attributes(self.seq, DNP3_IDENTITY), False))

    def read(self, t: int) -> list[Record]:
        self._op("Read", "READ")
        self.polls = 0
        return self.poll(t)

    def write(self, t: int, i: int = 0) -> list[Record]:
        self._op("Direct Operate", "ACTION")
        crob = f.dnp3_crob(i % 8, 0x03 if i % 2 == 0 else 0x04)
        return self._req(t, 5, crob, crob)

    def stop(self, t: int) -> list[Record]:
        self._op("Cold Restart", "ACTION")
        return self._req(t, 13, b"", f.dnp3_time_delay(5000))

    def download(self, t: int) -> list[Record]:
        """A file written to the outstation: open, transport blocks, close."""
        rng = self.rng
        handle, req_id = rng.getrandbits(31), rng.randrange(1, 0xFFFF)
        blocks = [rng.randbytes(180) for _ in range(3)]
        size = sum(map(len, blocks))
        out = self._req(t, 25, f.dnp3_file_open("/cfg/settings.txt", size, req_id),
                        f.dnp3_file_status(handle, size, req_id))
        for n, data in enumerate(blocks):
            last = n == len(blocks) - 1
            out += self._req(out[-1][0] + 50 * MS, 2, f.dnp3_file_transport(handle, n, data, last),
                             f.dnp3_file_transport_status(handle, n, last))
        out += self._req(out[-1][0] + 50 * MS, 26, f.dnp3_file_status(handle, 0, req_id), f.dnp3_file_status(handle, 0, req_id))
        self._op("Open File", "REPROGRAM")
        return out


__all__ = ["Conversation", "S7Conversation", "ModbusConversation", "Dnp3Conversation"]
