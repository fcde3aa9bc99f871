"""The demo plant: generated captures decode cleanly in tshark, match ground_truth.json, the
attack-free variant holds none of the attack, and generation is byte-for-byte reproducible."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo_data"

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
WARN = 0x00600000
EXPECTED_EXPERT = ("Connection reset (RST)",)  # refused connections are the point of the scan


def _generator():
    spec = importlib.util.spec_from_file_location("demo_generate", DEMO / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("demo_generate", mod)
    spec.loader.exec_module(mod)
    return mod


gen = _generator()


def _small(out: Path, attack: bool = True, seed: int = 11) -> dict:
    cfg = gen.Config(seed=seed, learn_days=1, plcs=2, modbus_devices=2, workstations=3, attack=attack,
                     poll_s=60.0, out_dir=out)
    return gen.generate(cfg)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo_attack")
    _small(out)
    return out


@pytest.fixture(scope="module")
def quiet(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo_quiet")
    _small(out, attack=False)
    return out


def _tshark(path: Path, fields: list[str], display_filter: str | None = None) -> list[list[str]]:
    cmd = ["tshark", "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
           "-o", "ip.check_checksum:TRUE", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]
    if display_filter:
        cmd += ["-Y", display_filter]
    for fld in fields:
        cmd += ["-e", fld]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def _assert_decodes_cleanly(path: Path) -> None:
    rows = _tshark(path, ["frame.number", "frame.protocols", "_ws.expert.severity", "_ws.expert.message", "_ws.malformed"],
                   f"_ws.expert.severity >= {WARN} || _ws.malformed || _ws.short")
    bad = []
    for num, protos, sev, msg, malformed in rows:
        if malformed or "_ws.short" in protos:
            bad.append((num, protos, "malformed"))
            continue
        for s, m in zip(sev.split("|"), msg.split("|"), strict=False):
            if s and int(s) >= WARN and not m.startswith(EXPECTED_EXPERT):
                bad.append((num, protos, m))
    assert not bad, f"{path.name}: {len(bad)} flagged frames, first {bad[:5]}"


@needs_tshark
@pytest.mark.tshark
def test_small_captures_decode_cleanly(small: Path, quiet: Path) -> None:
    for d in (small, quiet):
        for name in ("learn.pcapng.gz", "incident.pcapng.gz"):
            _assert_decodes_cleanly(d / name)


@needs_tshark
@pytest.mark.tshark
def test_protocols_a_control_engineer_expects(small: Path) -> None:
    rows = _tshark(small / "learn.pcapng.gz", ["frame.protocols"])
    protos = set()
    for (p,) in rows:
        protos.update(p.split(":"))
    for want in ("vlan", "s7comm", "cotp", "modbus", "tls", "rdp", "dns", "dhcp", "nbns", "ntp", "arp", "smb2"):
        assert want in protos, want
    # the learning days hold the planned download (EWS -> PLC-01) and no attacker
    gt = json.loads((small / "ground_truth.json").read_text())
    dl = _tshark(small / "learn.pcapng.gz", ["ip.src", "ip.dst"], "s7comm.param.func == 0x1a && s7comm.header.rosctr == 1")
    ews = next(d for d in gt["devices"] if d["name"] == "EWS01")
    assert dl and {r[0] for r in dl} == {ews["ip"]}
    a = gt["attacker"]
    assert not _tshark(small / "learn.pcapng.gz", ["frame.number"], f"ip.addr == {a['ip']} || eth.addr == {a['mac']}")


def _step_rows(path: Path, step: dict) -> list[list[str]]:
    return _tshark(path, ["frame.time_epoch", "ip.src", "ip.dst", "eth.src"], step["tshark_filter"])


@needs_tshark
@pytest.mark.tshark
def test_captures_match_ground_truth(small: Path) -> None:
    gt = json.loads((small / "ground_truth.json").read_text())
    assert [s["id"] for s in gt["steps"]] == ["new_device", "admin_rdp", "ics_scan", "c2_tls", "ext_502",
                                              "ext_burst", "ics_commands", "departure"]
    a = gt["attacker"]
    # every step involves the attacker: filter its packets out once, then query the small file
    inc = small / "attacker.pcapng"
    subprocess.run(["tshark", "-n", "-r", str(small / gt["captures"]["incident"]["path"]), "-Y",
                    f"ip.addr == {a['ip']} || eth.addr == {a['mac']}", "-w", str(inc)],
                   capture_output=True, check=True)
    for step in gt["steps"]:
        rows = _step_rows(inc, step)
        assert rows, f"{step['id']}: no packet matches {step['tshark_filter']!r}"
        times = [float(r[0]) for r in rows]
        lo, hi = step["start_ns"] / 1e9 - 1e-3, step["end_ns"] / 1e9 + 1e-3
        if step["id"] == "departure":  # every packet of the device: the last one ends the step
            assert lo <= max(times) <= hi
            continue
        assert lo <= min(times) and max(times) <= hi, step["id"]
        if step["id"] == "new_device":
            assert {r[3] for r in rows} == {a["mac"]}
            continue
        assert {r[1] for r in rows} == {step["source"]}, step["id"]
        assert {r[2] for r in rows} == set(step["targets"]), step["id"]
    # the device is gone the day after: nothing from it in the capture's last hours
    last = max(float(r[0]) for r in _tshark(inc, ["frame.time_epoch"], f"eth.addr == {a['mac']}"))
    end = gt["captures"]["incident"]["end"]
    assert last < gt["steps"][-1]["end_ns"] / 1e9 + 1
    assert end > gt["steps"][-1]["end"]
    ops = {(o["target"], o["op"]) for o in next(s for s in gt["steps"] if s["id"] == "ics_commands")["facts"]["operations"]}
    stops = _tshark(inc, ["ip.dst"], f"ip.src == {a['ip']} && s7comm.param.func == 0x29")
    assert {(r[0], "PLC Stop") for r in stops} <= ops and stops
    wr = _tshark(inc, ["ip.dst", "modbus.func_code"], f"ip.src == {a['ip']} && (modbus.func_code == 5 || modbus.func_code == 6 || modbus.func_code == 16)")
    assert len(wr) == 6


@needs_tshark
@pytest.mark.tshark
def test_attack_free_variant_contains_none_of_it(small: Path, quiet: Path) -> None:
    assert not (quiet / "ground_truth.json").exists()
    gt = json.loads((small / "ground_truth.json").read_text())
    a = gt["attacker"]
    any_step = " || ".join(f"({s['tshark_filter']})" for s in gt["steps"])
    for name in ("learn.pcapng.gz", "incident.pcapng.gz"):
        path = quiet / name
        assert not _tshark(path, ["frame.number"], f"{any_step} || ip.addr == {a['ip']} || eth.addr == {a['mac']}"), name
    # the normal plant is the same with and without the attack
    q = _tshark(quiet / "learn.pcapng.gz", ["frame.number"])
    s = _tshark(small / "learn.pcapng.gz", ["frame.number"])
    assert len(q) == len(s)


def test_generation_is_reproducible(small: Path, tmp_path: Path) -> None:
    _small(tmp_path)
    for name in ("learn.pcapng.gz", "incident.pcapng.gz", "ground_truth.json"):
        assert (tmp_path / name).read_bytes() == (small / name).read_bytes(), name
    # another seed is another plant
    macs = {h.mac for h in gen.Plant(gen.Config(seed=11)).internal}
    assert not macs & {h.mac for h in gen.Plant(gen.Config(seed=12)).internal}


# ---- the shipped files

SHIPPED = [DEMO / "learn.pcapng.gz", DEMO / "incident.pcapng.gz"]
shipped = pytest.mark.skipif(not all(p.exists() for p in SHIPPED), reason="demo captures not generated")


@shipped
def test_shipped_files_fit_and_zones_parse() -> None:
    from plantwatch.core.inventory.zones import Zones

    assert sum(p.stat().st_size for p in SHIPPED) <= 25 * 1024 * 1024
    z = Zones.load(DEMO / "zones.toml")
    gt = json.loads((DEMO / "ground_truth.json").read_text())
    for d in gt["devices"]:
        assert z.classify_one(d["ip"])[0] == d["zone"], d
    assert z.classify_one(gt["attacker"]["ip"]) == ("Computing", "it")


@shipped
@needs_tshark
@pytest.mark.tshark
def test_shipped_incident_matches_ground_truth() -> None:
    gt = json.loads((DEMO / "ground_truth.json").read_text())
    a = gt["attacker"]
    rows = _tshark(DEMO / gt["captures"]["incident"]["path"], ["frame.time_epoch", "ip.src", "ip.dst", "eth.src"],
                   f"ip.src == {a['ip']} || eth.src == {a['mac']}")
    assert rows
    for step in gt["steps"]:
        lo, hi = step["start_ns"] / 1e9 - 1e-3, step["end_ns"] / 1e9 + 1e-3
        inside = [r for r in rows if lo <= float(r[0]) <= hi]
        assert inside, step["id"]
        if step["targets"] and step["id"] != "new_device":
            assert set(step["targets"]) <= {r[2] for r in inside}, step["id"]


@shipped
@needs_tshark
@pytest.mark.tshark
@pytest.mark.slow
def test_shipped_captures_decode_cleanly() -> None:
    for p in SHIPPED:
        _assert_decodes_cleanly(p)


@shipped
@pytest.mark.slow
def test_shipped_files_regenerate_byte_for_byte(tmp_path: Path) -> None:
    """The simulator rebuilds the shipped captures and ground truth exactly (default options)."""
    gen.generate(gen.Config(out_dir=tmp_path))
    for name in ("learn.pcapng.gz", "incident.pcapng.gz", "ground_truth.json"):
        assert (tmp_path / name).read_bytes() == (DEMO / name).read_bytes(), name
