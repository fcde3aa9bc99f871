"""The demo plant: a food-processing plant's "Computing" (IT) and "Industrial" (OT) VLANs seen
from a SPAN port on the core switch, learning days then the incident day with the seed attack.

`generate(Config(...))` writes the learning and incident captures (and ground_truth.json when
the attack is on), byte for byte reproducible from the configuration.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from plantwatch.core.synth.actors import WindowActor, windows
from plantwatch.core.synth.attack import Attacker, step_records
from plantwatch.core.synth.clock import DAY, HOUR, MINUTE, iso, ns
from plantwatch.core.synth.pcapwriter import PcapngWriter
from plantwatch.core.synth.plant import OUIS, Plant, PlantShape, Zone
from plantwatch.core.synth.traffic.field_poll import FIELD, FieldEngineering, FieldPoller
from plantwatch.core.synth.traffic.ics import EngineeringWorkstation, ModbusPoller, S7Poller
from plantwatch.core.synth.traffic.it import Historian, Infrastructure, JumpHost, WindowsHost

START = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)  # a Monday; plant time is UTC
IT, OT = "Computing", "Industrial"
ZONES = (Zone(IT, "it", "10.10.10", 10), Zone(OT, "ot", "10.20.20", 20))
WS_NAMES = ("FIN-PC01", "HR-PC02", "QA-PC03", "PLAN-PC04", "LAB-PC05", "MAINT-PC06", "PROD-PC07",
            "LOG-PC08", "SALES-PC09", "MGMT-PC10", "PURCH-PC11", "QA-PC12")
SAAS = (  # (name, address): HTTPS with SNI from the office
    ("outlook.office365.com", "52.97.146.178"), ("login.microsoftonline.com", "20.190.159.4"),
    ("teams.microsoft.com", "52.113.194.132"), ("graph.microsoft.com", "20.190.151.7"),
    ("settings-win.data.microsoft.com", "20.42.65.92"), ("ctldl.windowsupdate.com", "93.184.221.240"),
    ("www.sap.com", "104.90.24.38"), ("plant-erp.eu10.hana.ondemand.com", "3.121.100.67"),
    ("www.google.com", "142.250.185.100"), ("support.industry.siemens.com", "23.57.112.17"),
)
ADMIN_USER = "adm-mkeller"


@dataclass
class Config:
    seed: int = 7
    learn_days: int = 2
    plcs: int = 4             # Siemens S7 PLCs polled by the WinCC server
    modbus_devices: int = 3   # Schneider Modbus/TCP devices polled by the HMI
    workstations: int = 12
    attack: bool = True
    poll_s: float = 15.0      # SCADA poll period in the capture (thinned from ~1-2 s)
    out_dir: Path = Path(".")
    learn_name: str = "learn.pcapng.gz"
    incident_name: str = "incident.pcapng.gz"
    ground_truth_name: str = "ground_truth.json"
    incident_hours: float = 34.0  # incident capture: the attack day and the next morning

    def shape(self) -> PlantShape:
        return PlantShape(
            seed=self.seed, zones=ZONES,
            devices={"plc_s7": self.plcs, "plc_modbus": self.modbus_devices, "workstation": self.workstations},
            vendors={"plc_s7": "Siemens", "plc_modbus": "Schneider", "attacker": "ASUSTek"},
            poll_s={"s7": self.poll_s, "modbus": self.poll_s},
            domain="corp.foodplant.local", sites=SAAS, ca_name="Demo Public TLS CA 1",
            counters="digest", port_span=10000, opaque_block=4096, opaque_wire_safe=True)


class DemoPlant(Plant):
    """The demo plant's hosts: fixed addresses for the named servers; the PLCs, Modbus devices and
    workstations take the free ones from .21 up (PLCs at .21-.24, Modbus at .41-.43 by default).

    `plcs` are the controllers the SCADA server polls and `mbs` the field devices the HMI polls,
    in the shape's two field protocols (`shape.protocols`: S7 and Modbus in the demo)."""

    def __init__(self, cfg: Config | PlantShape) -> None:
        shape = cfg.shape() if isinstance(cfg, Config) else cfg
        super().__init__(shape)
        it, ot = shape.zone(IT), shape.zone(OT)
        ctrl, fld = FIELD[shape.protocols[0]], FIELD[shape.protocols[1]]
        n_plc, n_mb, n_ws = shape.count(ctrl.kind), shape.count(fld.kind), shape.count("workstation")
        dell, hp, siemens = OUIS["Dell"], OUIS["HP"], OUIS[shape.vendors[ctrl.kind]]
        schneider = OUIS[shape.vendors[fld.kind]][0]
        it_free = (i for i in range(21, 255) if i not in (157,))
        ot_free = (i for i in range(21, 255) if i not in (30, 50))
        plc_ips = [next(ot_free) for _ in range(n_plc)]
        if n_plc <= 20:
            ot_free = (i for i in range(41, 255) if i not in (50,) and i not in plc_ips)
        mb_ips = [next(ot_free) for _ in range(n_mb)]
        ws_ips = [next(it_free) for _ in range(n_ws)]
        H, mac = self.host, self.new_mac
        self.dc = H("DC01", f"{it.prefix}.2", it, mac(dell[0]), "Dell", "domain controller")
        self.fs = H("FS01", f"{it.prefix}.3", it, mac(hp[0]), "HP", "file server")
        self.jump = H("ITADM01", f"{it.prefix}.5", it, mac(dell[1]), "Dell", "IT admin jump host")
        self.ws = [H(WS_NAMES[i % len(WS_NAMES)] if i < len(WS_NAMES) else f"PC{i + 1:03d}",
                     f"{it.prefix}.{ws_ips[i]}", it, mac(dell[i % 3] if i % 4 else hp[0]),
                     "HP" if i % 4 == 0 else "Dell", "workstation")
                   for i in range(n_ws)]
        self.scada = H("WINCC01", f"{ot.prefix}.10", ot, mac(OUIS["Siemens"][2]), "Siemens", "SCADA server (WinCC)")
        self.hist = H("HIST01", f"{ot.prefix}.12", ot, mac(hp[0]), "HP", "historian")
        self.hmi = H("HMI01", f"{ot.prefix}.30", ot, mac(OUIS["Schneider"][0]), "Schneider", "HMI panel", ttl=64)
        self.ews = H("EWS01", f"{ot.prefix}.50", ot, mac(dell[3]), "Dell", "engineering workstation")
        self.plcs = [H(f"{ctrl.prefix}-{i + 1:02d}", f"{ot.prefix}.{plc_ips[i]}", ot, mac(siemens[i % 2 % len(siemens)]),
                       shape.vendors[ctrl.kind], ctrl.role, ttl=30) for i in range(n_plc)]
        self.mbs = [H(f"{fld.prefix}-{i + 1:02d}", f"{ot.prefix}.{mb_ips[i]}", ot, mac(schneider), shape.vendors[fld.kind],
                      "power meter (Modbus)" if fld.kind == "plc_modbus" and i % 3 == 2 else fld.role, ttl=64)
                    for i in range(n_mb)]
        self.routers = {z.name: H("CORE-SW", f"{z.prefix}.1", z, shape.router_mac, "Cisco", "router", ttl=255)
                        for z in (it, ot)}
        attacker_vendor = shape.vendors["attacker"]
        self.attacker = H("DESKTOP-4H7KQ2P", f"{it.prefix}.157", it, mac(OUIS[attacker_vendor][0]), attacker_vendor,
                          "new device (attacker)")
        self.add(self.dc, self.fs, self.jump, *self.ws, self.scada, self.hist, self.hmi, self.ews, *self.plcs,
                 *self.mbs)

    def normal_traffic(self, t_begin: int, maintenance: int | None) -> list[WindowActor]:
        """The plant's actors, in the order their records are produced each hour."""
        actors: list[WindowActor] = []
        ctrl, fld = self.shape.protocols
        actors += [S7Poller(self, self.scada, plc, t_begin) if ctrl == "s7" else
                   FieldPoller(self, ctrl, self.scada, plc, t_begin) for plc in self.plcs]
        actors += [ModbusPoller(self, self.hmi, dev, t_begin) if fld == "modbus" else
                   FieldPoller(self, fld, self.hmi, dev, t_begin) for dev in self.mbs]
        actors.append(EngineeringWorkstation(self, self.ews, self.plcs, maintenance) if ctrl == "s7" else
                      FieldEngineering(self, ctrl, self.ews, self.plcs, maintenance))
        actors += [WindowsHost(self, h, office_user=True, dhcp=True) for h in self.ws]
        actors.append(WindowsHost(self, self.jump, office_user=True, dhcp=False))
        actors += [WindowsHost(self, h, office_user=False, dhcp=False) for h in (self.scada, self.ews, self.hist, self.fs)]
        actors.append(JumpHost(self, self.jump, [self.dc, self.fs, self.scada], ADMIN_USER))
        actors.append(Infrastructure(self))
        actors.append(Historian(self, t_begin))
        return actors


def generate(cfg: Config) -> dict:
    """Write the learning and incident captures (and ground truth when the attack is on)."""
    p = DemoPlant(cfg)
    t_begin = ns(START)
    t_split = t_begin + cfg.learn_days * DAY
    p.boundaries = [t_split]
    t_end = t_split + int(cfg.incident_hours * HOUR)
    maintenance = t_begin + (min(cfg.learn_days, 2) - 1) * DAY + 21 * HOUR + 10 * MINUTE
    actors = p.normal_traffic(t_begin, maintenance)
    attacker = None
    if cfg.attack:
        attacker = Attacker(p, p.attacker, OT, t_split + 13 * HOUR + 12 * MINUTE)
        actors.append(attacker)

    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"learn": out_dir / cfg.learn_name, "incident": out_dir / cfg.incident_name}
    counts = {"learn": 0, "incident": 0}
    with PcapngWriter(paths["learn"], interfaces=((1, 9),)) as w_learn, \
            PcapngWriter(paths["incident"], interfaces=((1, 9),)) as w_inc:
        for ts, frame in windows(actors, t_begin, t_end):
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


def ground_truth(p: DemoPlant, cfg: Config, attacker: Attacker, summary: dict) -> dict:
    a = p.attacker
    return {
        "description": "The seed incident replayed in the demo plant (see demo_data/README.md).",
        "generator": {"seed": cfg.seed, "learn_days": cfg.learn_days, "plcs": cfg.plcs,
                      "modbus_devices": cfg.modbus_devices, "workstations": cfg.workstations, "poll_s": cfg.poll_s},
        "captures": summary,
        "zones": {z.name: {"kind": z.kind, "cidr": z.cidr, "vlan": z.vlan} for z in p.shape.zones},
        "attacker": {"ip": a.ip, "mac": a.mac, "vendor": a.vendor, "hostname": a.name},
        "devices": [{"name": h.name, "ip": h.ip, "mac": h.mac, "vendor": h.vendor, "role": h.role, "zone": h.net}
                    for h in (*p.internal, *p.routers.values())],
        "steps": step_records(attacker, summary["incident"]["path"]),
    }
