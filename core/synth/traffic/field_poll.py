"""The field protocols a generated plant can speak, and the routine poller that runs any of them.

`FIELD` describes each protocol: the conversation class, the device kind it names in a
PlantShape's vocabulary, the vendors that make such devices (OUIs in core/synth/plant.py), the
host name prefix and role shown in the ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from plantwatch.core.synth.actors import WindowActor
from plantwatch.core.synth.clock import HOUR, MINUTE, MS, SEC
from plantwatch.core.synth.plant import Host, Plant, Record
from plantwatch.core.synth.traffic.field import (
    Conversation,
    Dnp3Conversation,
    ModbusConversation,
    S7Conversation,
)
from plantwatch.core.synth.traffic.field_cip_iec104 import CipConversation, Iec104Conversation
from plantwatch.core.synth.traffic.ics import Poller


@dataclass(frozen=True)
class FieldProtocol:
    conversation: type[Conversation]
    kind: str                   # device kind in PlantShape.devices / vendors
    vendors: tuple[str, ...]    # who makes devices that speak it
    prefix: str                 # host names: PLC-01, RTU-01...
    role: str


FIELD: dict[str, FieldProtocol] = {
    "s7": FieldProtocol(S7Conversation, "plc_s7", ("Siemens",), "PLC", "PLC (S7)"),
    "modbus": FieldProtocol(ModbusConversation, "plc_modbus", ("Schneider", "ABB", "Rockwell"), "MB", "PLC (Modbus)"),
    "dnp3": FieldProtocol(Dnp3Conversation, "rtu_dnp3", ("SEL",), "RTU", "RTU (DNP3)"),
    "enip": FieldProtocol(CipConversation, "plc_enip", ("Rockwell",), "CLX", "PLC (EtherNet/IP)"),
    "iec104": FieldProtocol(Iec104Conversation, "rtu_iec104", ("ABB",), "SUB", "RTU (IEC 104)"),
}


def conversation(proto: str, p: Plant, rng: random.Random, client: Host, dev: Host) -> Conversation:
    return FIELD[proto].conversation(p, rng, client, dev)


class FieldPoller(Poller):
    """A SCADA master or HMI polling one device in `proto` on a long-lived connection."""

    def __init__(self, p: Plant, proto: str, client: Host, dev: Host, start: int) -> None:
        super().__init__(p, f"{proto}poll:{dev.ip}", start, p.shape.poll_s[proto])
        self.proto, self.client, self.dev = proto, client, dev
        self.conv: Conversation | None = None

    def open(self, t: int) -> list[Record]:
        self.conv = conversation(self.proto, self.p, self.rng, self.client, self.dev)
        out = self.conv.open(t)
        self.s = self.conv.s
        return out

    def poll(self, t: int) -> list[Record]:
        assert self.conv is not None
        return self.conv.poll(t + self.rng.randrange(0, 3) * MS)


class FieldEngineering(WindowActor):
    """The engineering workstation in a protocol other than S7 (core/synth/traffic/ics.py has the
    S7 one): online diagnostics in office hours (identify, a few reads), and one planned change in
    a maintenance window (identify, stop, download)."""

    def __init__(self, p: Plant, proto: str, ews: Host, devs: list[Host], maintenance: int | None) -> None:
        super().__init__(p, "ews")
        self.proto, self.ews, self.devs, self.maintenance = proto, ews, devs, maintenance

    def run(self, t0: int, t1: int) -> Iterable[Record]:
        p, rng = self.p, self.rng
        out: list[Record] = []
        if p.shape.rhythm.office_hours(t0) and self.devs and rng.random() < 0.35:
            c = conversation(self.proto, p, rng, self.ews, rng.choice(self.devs))
            o = c.open(t0 + rng.randrange(HOUR - 10 * MINUTE))
            o += c.identify(o[-1][0] + SEC)
            for _ in range(rng.randrange(3, 12)):
                o += c.read(o[-1][0] + rng.randrange(2, 20) * SEC)
            out += o + c.close(o[-1][0] + rng.randrange(1, 4) * SEC)
        if self.maintenance is not None and t0 <= self.maintenance < t1 and self.devs:
            c = conversation(self.proto, p, rng, self.ews, self.devs[0])
            o = c.open(self.maintenance)
            for step in (c.identify, c.stop, c.download):
                o += step(o[-1][0] + rng.randrange(3, 30) * SEC)
            out += o + c.close(o[-1][0] + 2 * SEC)
        return out


__all__ = ["FIELD", "FieldProtocol", "FieldPoller", "FieldEngineering", "conversation"]
