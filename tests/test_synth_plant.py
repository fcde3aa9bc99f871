"""The plant simulator (plantwatch.core.synth): test tooling the product never loads, and a
PlantShape that really shapes the plant (the seed, sizes, zones, poll periods and day rhythm)."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

from plantwatch.core.synth.actors import windows
from plantwatch.core.synth.clock import HOUR, SEC, DayRhythm, ns
from plantwatch.core.synth.demo import START, Config, DemoPlant
from plantwatch.core.synth.mixed import MixedPlant, shape
from plantwatch.core.synth.plant import EXT, Zone

ROOT = Path(__file__).resolve().parent.parent
SYNTH = "plantwatch.core.synth"


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_runtime_modules_never_import_the_simulator() -> None:
    runtime = [p for d in ("core", "tui", "plantwatch") for p in sorted((ROOT / d).rglob("*.py"))
               if not p.relative_to(ROOT).as_posix().startswith("core/synth/")]
    assert len(runtime) > 50
    offenders = [f"{p.relative_to(ROOT)} imports {n}" for p in runtime for n in _imports(p)
                 if n == SYNTH or n.startswith(SYNTH + ".")]
    assert not offenders, "\n".join(offenders)


def test_the_console_loads_no_simulator_module() -> None:
    code = ("import sys, plantwatch.tui.cli, plantwatch.core.pipeline.ingest, plantwatch.core.pipeline.sensor; "
            f"print(sorted(m for m in sys.modules if m.startswith('{SYNTH}')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_shape_sets_the_demo_plant() -> None:
    base = Config(seed=3, plcs=5, modbus_devices=4, workstations=7).shape()
    p = DemoPlant(base)
    assert (len(p.plcs), len(p.mbs), len(p.ws)) == (5, 4, 7)
    assert {h.net for h in p.internal} == {"Computing", "Industrial"}
    assert all(h.ip.startswith("10.20.20.") for h in p.plcs + p.mbs)
    # another address plan and tags: the same layout follows the zones
    zones = (Zone("Computing", "it", "192.168.1", 100), Zone("Industrial", "ot", "172.16.5", None))
    q = DemoPlant(dataclasses.replace(base, zones=zones))
    assert all(h.ip.startswith("172.16.5.") and h.vlan is None for h in q.plcs)
    assert q.dc.ip == "192.168.1.2" and q.dc.vlan == 100
    assert [h.mac for h in q.internal] == [h.mac for h in p.internal]  # MACs come from the seed
    assert not {h.mac for h in DemoPlant(dataclasses.replace(base, seed=4)).internal} & {
        h.mac for h in p.internal}


def _count(p: DemoPlant, hours: int) -> int:
    t0 = ns(START)
    return sum(1 for _ in windows(p.normal_traffic(t0, None), t0, t0 + hours * HOUR))


def test_poll_period_and_day_rhythm_change_the_traffic() -> None:
    cfg = Config(seed=5, plcs=2, modbus_devices=2, workstations=2, poll_s=60.0)
    base = cfg.shape()
    n = _count(DemoPlant(base), 2)
    faster = dataclasses.replace(base, poll_s={"s7": 10.0, "modbus": 10.0})
    assert _count(DemoPlant(faster), 2) > n + 4 * 2 * 2 * 50  # 4 devices, 2 h, >= 300 more polls
    # START is a Monday: with a night-shift rhythm (no office hours) the offices stay quiet
    day = Config(seed=5, plcs=2, modbus_devices=2, workstations=2, poll_s=600.0).shape()
    busy = _count(DemoPlant(day), 24)
    night = dataclasses.replace(day, rhythm=DayRhythm(office_start_h=0.0, office_end_h=0.0, workdays=0))
    assert _count(DemoPlant(night), 24) < 0.7 * busy  # deterministic: 8302 vs 14300 packets


def test_the_mixed_plant_follows_its_shape() -> None:
    s = dataclasses.replace(shape(2), devices={**shape(2).devices, "plc_modbus": 5, "workstation": 9})
    p = MixedPlant(s)
    assert (len(p.mbs), len(p.ws)) == (5, 9)
    assert {h.net for h in p.internal} == {"it", "c1", "c2"}
    assert {h.vlan for h in p.plcs} == {20} and {h.vlan for h in p.mbs} == {None}
    assert all(h.net == EXT for h in p.sites)
    # a stream starts within its first second of packet time
    assert all(p.t0 <= a.t < p.t0 + SEC for a in p.normal_traffic())
