"""Conversations (core/synth/traffic/field.py) in EtherNet/IP + CIP and IEC 60870-5-104."""

from __future__ import annotations

import random
import struct

from plantwatch.core.synth import frames as f
from plantwatch.core.synth.clock import MS, SEC
from plantwatch.core.synth.plant import Host, Plant, Record
from plantwatch.core.synth.traffic.field import Conversation

# Rockwell (vendor 1) ControlLogix identity: device type 14 (programmable logic controller)
CIP_IDENTITY = dict(vendor=1, device_type=14, product_code=166, revision=(32, 11), name="1756-L83E/B")


class CipConversation(Conversation):
    """An EtherNet/IP session: Register Session, then explicit CIP requests in SendRRData."""

    proto, port, display_filter = "enip", f.ENIP_PORT, "enip"

    def __init__(self, p: Plant, rng: random.Random, client: Host, dev: Host) -> None:
        super().__init__(p, rng, client, dev)
        self.handle = rng.getrandbits(32)
        self.ctx = rng.getrandbits(48)
        self.serial = 0x60000000 | (int(dev.ip.rsplit(".", 1)[1]) << 8) | p.shape.seed & 0xFF

    def _cip(self, t: int, request: bytes, response: bytes) -> list[Record]:
        self.ctx += 1
        ctx = struct.pack("<Q", self.ctx)
        return self.ex(t, f.enip_send_rr_data(self.handle, request, ctx), f.enip_send_rr_data(self.handle, response, ctx))

    def open(self, t: int) -> list[Record]:
        out = super().open(t)
        return out + self.ex(out[-1][0] + MS, f.enip_register_session(0), f.enip_register_session_resp(self.handle))

    def poll(self, t: int) -> list[Record]:
        inst = 100 + self.rng.randrange(3)
        return self._cip(t, f.cip_request(0x0E, 0x04, inst, 3), f.cip_response(0x0E, self.rng.randbytes(32)))

    def identify(self, t: int) -> list[Record]:
        out = self.ex(t, f.enip_list_identity(), f.enip_list_identity_resp(
            self.dev.ipb, vendor=CIP_IDENTITY["vendor"], device_type=CIP_IDENTITY["device_type"],
            product_code=CIP_IDENTITY["product_code"], revision=CIP_IDENTITY["revision"],
            serial=self.serial, name=CIP_IDENTITY["name"]))
        out += self._cip(out[-1][0] + SEC, f.cip_request(0x01, 0x01, 1),
                         f.cip_response(0x01, f.cip_identity_attributes(serial=self.serial, **CIP_IDENTITY)))
        self._op("List Identity", "DISCOVER")
        self._op("Identity: Get Attributes All", "DISCOVER")
        return out

    def read(self, t: int) -> list[Record]:
        self._op("Get Attribute Single", "READ")
        return self.poll(t)

    def write(self, t: int, i: int = 0) -> list[Record]:
        self._op("Set Attribute Single", "ACTION")
        return self._cip(t, f.cip_request(0x10, 0x04, 150 + i % 4, 3, self.rng.randbytes(8)), f.cip_response(0x10))

    def stop(self, t: int) -> list[Record]:
        self._op("Identity: Reset", "ACTION")
        return self._cip(t, f.cip_request(0x05, 0x01, 1, None, b"\x00"), f.cip_response(0x05))

    def download(self, t: int) -> list[Record]:
        """The File object's download sequence: initiate, transfers, the last one flagged."""
        chunks = [self.rng.randbytes(200) for _ in range(3)]
        out = self._cip(t, f.cip_request(0x4C, 0x37, 1, None, f.cip_file_initiate_download(600, "program.acd")),
                        f.cip_response(0x4C, struct.pack("<IB", 600, 1)))
        for n, data in enumerate(chunks):
            last = n == len(chunks) - 1
            out += self._cip(out[-1][0] + 20 * MS, f.cip_request(0x50, 0x37, 1, None, f.cip_file_download_transfer(n, data, last)),
                             f.cip_response(0x50, bytes([n & 0xFF])))
        self._op("File: Initiate Download", "REPROGRAM")
        return out


# IEC 104 type ids and causes of transmission used here
M_SP_NA_1, M_ME_NC_1, C_SC_NA_1, C_DC_NA_1 = 1, 13, 45, 46
C_IC_NA_1, C_CI_NA_1, C_RD_NA_1, C_RP_NA_1 = 100, 101, 102, 105
F_FR_NA_1, F_SR_NA_1, F_SC_NA_1, F_LS_NA_1, F_AF_NA_1, F_SG_NA_1 = 120, 121, 122, 123, 124, 125
COT_SPONT, COT_REQ, COT_ACT, COT_ACTCON, COT_ACTTERM, COT_FILE, COT_INROGEN = 3, 5, 6, 7, 10, 13, 20
FILE_IOA = 0x2000


class Iec104Conversation(Conversation):
    """A controlling station (the client) and one RTU: STARTDT, a general interrogation, then the
    RTU's spontaneous measurements and indications acknowledged by S-frames; TESTFR when idle."""

    proto, port, display_filter = "iec104", f.IEC104_PORT, "iec60870_104"

    def __init__(self, p: Plant, rng: random.Random, client: Host, dev: Host) -> None:
        super().__init__(p, rng, client, dev)
        self.ca = int(dev.ip.rsplit(".", 1)[1])
        self.vs = [0, 0]          # send sequence of the client and of the RTU
        self.unacked = 0
        self.polls = 0
        self.values = [rng.uniform(10, 400) for _ in range(12)]

    def _i(self, from_client: bool, type_id: int, cot: int, ioa: int, element: bytes) -> bytes:
        me, peer = (0, 1) if from_client else (1, 0)
        apdu = f.iec104_i_frame(self.vs[me], self.vs[peer], type_id, cot, self.ca, ioa, element)
        self.vs[me] = (self.vs[me] + 1) & 0x7FFF
        if not from_client:
            self.unacked += 1
        return apdu

    def _send(self, t: int, apdu: bytes, from_client: bool) -> list[Record]:
        assert self.s is not None
        return self.s.send(t, apdu, from_client)

    def _meas(self, ioa_index: int) -> bytes:
        self.values[ioa_index] += self.rng.gauss(0, 0.5)
        return struct.pack("<fB", self.values[ioa_index], 0)

    def _ack(self, t: int) -> list[Record]:
        self.unacked = 0
        return self._send(t, f.iec104_s_frame(self.vs[1]), True)

    def _command(self, t: int, type_id: int, ioa: int, element: bytes, term: bool = True) -> list[Record]:
        """act from the client, actcon (and actterm) from the RTU."""
        out = self._send(t, self._i(True, type_id, COT_ACT, ioa, element), True)
        out += self._send(out[-1][0] + self.rtt(), self._i(False, type_id, COT_ACTCON, ioa, element), False)
        if term:
            out += self._send(out[-1][0] + self.rtt(), self._i(False, type_id, COT_ACTTERM, ioa, element), False)
        return out

    def _interrogation(self, t: int) -> list[Record]:
        out = self._send(t, self._i(True, C_IC_NA_1, COT_ACT, 0, b"\x14"), True)
        out += self._send(out[-1][0] + self.rtt(), self._i(False, C_IC_NA_1, COT_ACTCON, 0, b"\x14"), False)
        for k in range(len(self.values)):
            out += self._send(out[-1][0] + 400_000, self._i(False, M_ME_NC_1, COT_INROGEN, 1001 + k, self._meas(k)), False)
        out += self._send(out[-1][0] + 400_000, self._i(False, C_IC_NA_1, COT_ACTTERM, 0, b"\x14"), False)
        return out + self._ack(out[-1][0] + MS)

    def open(self, t: int) -> list[Record]:
        out = super().open(t)
        out += self.ex(out[-1][0] + MS, f.IEC104_STARTDT_ACT, f.IEC104_STARTDT_CON)
        return out + self._interrogation(out[-1][0] + 5 * MS)

    def poll(self, t: int) -> list[Record]:
        rng = self.rng
        self.polls += 1
        if self.polls % 8 == 0:  # the link was idle: test frame
            return self.ex(t, f.IEC104_TESTFR_ACT, f.IEC104_TESTFR_CON)
        out: list[Record] = []
        for _ in range(rng.randrange(1, 4)):
            if rng.random() < 0.2:
                apdu = self._i(False, M_SP_NA_1, COT_SPONT, 2001 + rng.randrange(8), bytes([rng.randrange(2)]))
            else:
                k = rng.randrange(len(self.values))
                apdu = self._i(False, M_ME_NC_1, COT_SPONT, 1001 + k, self._meas(k))
            out += self._send(out[-1][0] + rng.randrange(1, 50) * MS if out else t, apdu, False)
        if self.unacked >= 4:
            out += self._ack(out[-1][0] + 2 * MS)
        else:
            assert self.s is not None
            out += self.s.ack(out[-1][0] + 500_000)
        return out

    def identify(self, t: int) -> list[Record]:
        out = self._command(t, C_CI_NA_1, 0, b"\x05")
        out += self._interrogation(out[-1][0] + SEC)
        self._op("C_CI_NA_1 counter interrogation", "DISCOVER")
        self._op("C_IC_NA_1 interrogation", "DISCOVER")
        return out

    def read(self, t: int) -> list[Record]:
        k = self.rng.randrange(len(self.values))
        out = self._send(t, self._i(True, C_RD_NA_1, COT_REQ, 1001 + k, b""), True)
        out += self._send(out[-1][0] + self.rtt(), self._i(False, M_ME_NC_1, COT_REQ, 1001 + k, self._meas(k)), False)
        self._op("C_RD_NA_1 read", "READ")
        return out + self._ack(out[-1][0] + MS)

    def write(self, t: int, i: int = 0) -> list[Record]:
        if i % 2:
            self._op("C_DC_NA_1 double command", "ACTION")
            out = self._command(t, C_DC_NA_1, 3001 + i % 8, bytes([1 + (i // 2) % 2]))
        else:
            self._op("C_SC_NA_1 single command", "ACTION")
            out = self._command(t, C_SC_NA_1, 2001 + i % 8, bytes([(i // 2) % 2]))
        return out + self._ack(out[-1][0] + MS)

    def stop(self, t: int) -> list[Record]:
        self._op("C_RP_NA_1 reset process", "ACTION")
        out = self._command(t, C_RP_NA_1, 0, b"\x01", term=False)
        return out + self._ack(out[-1][0] + MS)

    def download(self, t: int) -> list[Record]:
        """A file transferred in control direction: file ready, the RTU calls the file and its
        one section, segments, last segment (acknowledged), last section (acknowledged)."""
        rng = self.rng
        nof, segments = rng.randrange(1, 9), [rng.randbytes(200) for _ in range(3)]
        lof = sum(map(len, segments))
        chs = sum(b"".join(segments)) & 0xFF
        steps = [
            (True, F_FR_NA_1, struct.pack("<H", nof) + lof.to_bytes(3, "little") + b"\x00"),
            (False, F_SC_NA_1, struct.pack("<HBB", nof, 0, 2)),            # call file
            (True, F_SR_NA_1, struct.pack("<HB", nof, 1) + lof.to_bytes(3, "little") + b"\x00"),
            (False, F_SC_NA_1, struct.pack("<HBB", nof, 1, 6)),            # call section 1
            *((True, F_SG_NA_1, struct.pack("<HBB", nof, 1, len(seg)) + seg) for seg in segments),
            (True, F_LS_NA_1, struct.pack("<HBBB", nof, 1, 3, chs)),       # last segment
            (False, F_AF_NA_1, struct.pack("<HBB", nof, 1, 3)),            # section acknowledged
            (True, F_LS_NA_1, struct.pack("<HBBB", nof, 0, 1, chs)),       # last section
            (False, F_AF_NA_1, struct.pack("<HBB", nof, 0, 1)),            # file acknowledged
        ]
        out: list[Record] = []
        for from_client, type_id, element in steps:
            gap = self.rtt() if out else 0
            out += self._send((out[-1][0] if out else t) + gap, self._i(from_client, type_id, COT_FILE, FILE_IOA, element),
                              from_client)
        self._op("F_FR_NA_1 file ready", "REPROGRAM")
        return out + self._ack(out[-1][0] + MS)


__all__ = ["CipConversation", "Iec104Conversation"]
