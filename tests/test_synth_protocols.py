"""Generated plants speak the field protocols their seed draws (core/synth/traffic/field*.py):
every protocol's frames decode in tshark with no malformed frame or expert warning, and
plantwatch finds the operations tshark sees (counts by protocol and function/service/type code)."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest

from plantwatch.core.decode.schema import APP_DNP3, APP_ENIP, APP_IEC104, APP_MODBUS
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.synth import scenarios
from plantwatch.core.synth.actors import windows
from plantwatch.core.synth.attack import Attacker
from plantwatch.core.synth.attack_variants import VARIANTS
from plantwatch.core.synth.clock import HOUR, MINUTE, ns
from plantwatch.core.synth.demo import OT, START, DemoPlant
from plantwatch.core.synth.pcapwriter import PcapngWriter
from plantwatch.core.synth.plant import OUIS
from plantwatch.core.synth.traffic.field_poll import FIELD
from tests.oracle import CHECK_CHECKSUMS, HAVE_TSHARK, tshark_fields

needs_tshark = pytest.mark.skipif(not HAVE_TSHARK, reason="tshark not installed")
FLAGGED = "_ws.expert.severity >= 0x00600000 || _ws.malformed || _ws.short"
EXPECTED_EXPERT = ("Connection reset (RST)",)  # the loud scan's refused probes


def test_any_three_consecutive_seeds_speak_all_five_protocols() -> None:
    every = set(FIELD)
    assert {x for pair in scenarios.FIELD_PAIRS for x in pair} == every
    for seed in range(300):
        assert {x for s in (seed, seed + 1, seed + 2) for x in scenarios.draw_shape(s).protocols} == every
    assert {x for s in scenarios.REPORT_SEEDS for x in scenarios.draw_shape(s).protocols} == every
    # each protocol is once the controllers' and once the field devices'
    assert sorted(c for c, _ in scenarios.FIELD_PAIRS) == sorted(f for _, f in scenarios.FIELD_PAIRS) == sorted(every)


@pytest.mark.parametrize("seed", [*scenarios.TUNING_SEEDS, *scenarios.REPORT_SEEDS])
def test_vendors_and_names_follow_the_protocol(seed: int) -> None:
    p = DemoPlant(scenarios.draw_shape(seed))
    for devs, proto in zip((p.plcs, p.mbs), p.shape.protocols, strict=True):
        assert devs
        for h in devs:
            assert h.vendor in FIELD[proto].vendors, (proto, h)
            assert h.mac[:8] in OUIS[h.vendor], (proto, h)
            assert h.name.startswith(FIELD[proto].prefix + "-") and h.role == FIELD[proto].role


def _plant_capture(seed: int, out: Path) -> tuple[Path, DemoPlant, list]:
    """Three hours of the plant of `seed` with the loud attack and the protocol-specific variants
    (insider, a controller attacking a peer, a write flood) played in its own protocols."""
    p = DemoPlant(scenarios.draw_shape(seed))
    t0 = ns(START) + 8 * HOUR
    attacks = [Attacker(p, p.attacker, OT, t0 + 5 * MINUTE), VARIANTS["insider"](p, t0 + 20 * MINUTE),
               VARIANTS["field_peer"](p, t0 + 40 * MINUTE), VARIANTS["write_flood"](p, t0 + 70 * MINUTE)]
    path = out / f"plant-{seed}.pcapng"
    with PcapngWriter(path) as w:
        for ts, frame in windows([*p.normal_traffic(t0, t0 + HOUR), *attacks], t0, t0 + 3 * HOUR):
            w.write(ts, frame)
    return path, p, attacks


@pytest.fixture(scope="module")
def plants(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Path, DemoPlant, list]]:
    out = tmp_path_factory.mktemp("synth_protocols")
    plants = {}
    for seed in scenarios.REPORT_SEEDS:
        path, p, attacks = _plant_capture(seed, out)
        store = out / f"plant-{seed}.sqlite"
        with Store(store) as st:
            Ingest(st).run([path])
        plants[seed] = (path, store, p, attacks)
    return plants


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("seed", scenarios.REPORT_SEEDS)
def test_tshark_decodes_every_generated_frame_cleanly(plants: dict, seed: int) -> None:
    path, _, p, _ = plants[seed]
    rows = tshark_fields(path, ["frame.protocols", "_ws.expert.message"], FLAGGED, aggregator="\x1f",
                         prefs=CHECK_CHECKSUMS)
    bad = [(n, r) for n, r in rows.items()
           if "_ws.malformed" in r["frame.protocols"] or "_ws.short" in r["frame.protocols"]
           or any(m and not m.startswith(EXPECTED_EXPERT) for m in r["_ws.expert.message"].split("\x1f"))]
    assert not bad, f"{p.shape.protocols}: {len(bad)} flagged, first {bad[:5]}"
    layers = Counter(x for r in tshark_fields(path, ["frame.protocols"]).values()
                     for x in r["frame.protocols"].split(":"))
    for proto in p.shape.protocols:
        assert layers[FIELD[proto].conversation.display_filter] > 100, (proto, layers)


def _tshark_codes(path: Path, proto: str) -> Counter:
    """tshark's operations of `proto` by code, as plantwatch keys them (core/decode/*.py)."""
    if proto == "dnp3":
        rows = tshark_fields(path, ["dnp3.al.func"], "dnp3")
        return Counter(int(v) for r in rows.values() for v in r["dnp3.al.func"].split(",") if v)
    if proto == "modbus":
        rows = tshark_fields(path, ["modbus.func_code"], "modbus")
        return Counter(int(v) & 0x7F for r in rows.values() for v in r["modbus.func_code"].split(",") if v)
    if proto == "enip":  # a CIP service in SendRRData, else the encapsulation command
        rows = tshark_fields(path, ["enip.command", "cip.sc"], "enip && !tcp.analysis.retransmission")
        return Counter(int(r["cip.sc"].split(",")[0], 16) if r["cip.sc"] else int(r["enip.command"], 16)
                       for r in rows.values())
    rows = tshark_fields(path, ["iec60870_asdu.typeid"], "iec60870_asdu")
    return Counter(int(v) for r in rows.values() for v in r["iec60870_asdu.typeid"].split(",") if v)


APPS = {"dnp3": APP_DNP3, "enip": APP_ENIP, "iec104": APP_IEC104, "modbus": APP_MODBUS}


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize(("seed", "proto"), [(s, x) for s in scenarios.REPORT_SEEDS
                                             for x in scenarios.draw_shape(s).protocols if x in APPS])
def test_plantwatch_finds_the_operations_tshark_sees(plants: dict, seed: int, proto: str) -> None:
    path, store, _, _ = plants[seed]
    want = _tshark_codes(path, proto)
    with Store(store) as st:
        rows = st.execute("SELECT code, SUM(count) FROM session_ops WHERE app = ? AND code IS NOT NULL"
                          " GROUP BY code", (APPS[proto],)).fetchall()
    assert sum(want.values()) > 100
    assert Counter({int(c): int(n) for c, n in rows}) == want


@pytest.mark.parametrize("seed", scenarios.REPORT_SEEDS)
def test_the_attacks_speak_the_plants_protocols(plants: dict, seed: int) -> None:
    _, _, p, attacks = plants[seed]
    ctrl, fld = p.shape.protocols
    loud, insider, peer, flood = attacks
    ops = next(s for s in loud.steps if s.id == "ics_commands").facts["operations"]
    names = {FIELD[x].conversation.proto for x in (ctrl, fld)}
    assert {o["proto"] for o in ops} == names
    assert {o["class"] for o in ops} >= {"DISCOVER", "READ", "ACTION"}
    assert insider.steps[0].ports == peer.steps[0].ports == [FIELD[ctrl].conversation.port]
    assert flood.steps[0].ports == [FIELD[fld].conversation.port]
    assert {o["class"] for o in flood.steps[0].facts["operations"]} == {"ACTION"}
    # a step expects a reprogram model exactly when its protocol downloaded something
    reprogram = any(o["class"] == "REPROGRAM" for o in ops)
    assert ("Uncommon ICS Reprogram" in next(s for s in loud.steps if s.id == "ics_commands").models) == reprogram


def test_each_protocol_pair_is_reproducible() -> None:
    for seed in (scenarios.REPORT_SEEDS[0], scenarios.TUNING_SEEDS[0]):
        a, b = (DemoPlant(scenarios.draw_shape(seed)) for _ in range(2))
        t0 = ns(START)
        ra = list(itertools.islice(windows(a.normal_traffic(t0, None), t0, t0 + HOUR), 3000))
        rb = list(itertools.islice(windows(b.normal_traffic(t0, None), t0, t0 + HOUR), 3000))
        assert ra == rb
