"""Acceptance on the demo plant (small variants generated at test time): learn on the learning
capture, detect on the incident capture, compare with the generator's ground truth; and an
attack-free day of another seed raises no incident and no breach scoring 0.5 or more."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.inventory.zones import Zones
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.views import eval as evaluation
from plantwatch.tui.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo_data"
ZONES = DEMO / "zones.toml"


def _generator():
    spec = importlib.util.spec_from_file_location("demo_generate", DEMO / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("demo_generate", mod)
    spec.loader.exec_module(mod)
    return sys.modules["demo_generate"]


def _small(out: Path, seed: int, attack: bool, hours: float) -> Path:
    gen = _generator()
    gen.generate(gen.Config(seed=seed, learn_days=1, plcs=2, modbus_devices=2, workstations=3, attack=attack,
                            poll_s=60.0, out_dir=out, incident_hours=hours))
    return out


@pytest.fixture(scope="module")
def plant(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("plant")
    attack = _small(base / "attack", 7, True, 20.0)
    free = _small(base / "free", 11, False, 24.0)
    return {"attack": attack, "free": free, "base": base}


@pytest.fixture(scope="module")
def detected(plant: dict[str, Path]) -> Path:
    store = plant["base"] / "attack.sqlite"
    zones = Zones.load(ZONES)
    with Store(store) as st:
        Ingest(st, zones, mode="learn").run([plant["attack"] / "learn.pcapng.gz"])
        Ingest(st, zones).run([plant["attack"] / "incident.pcapng.gz"])
    return store


def test_every_step_detected_by_its_models(plant: dict[str, Path], detected: Path) -> None:
    truth = evaluation.load_truth(plant["attack"] / "ground_truth.json")
    with Store(detected, readonly=True) as st:
        r = evaluation.evaluate(st, truth)
    missing = {s["id"]: s["missed"] for s in r["steps"] if s["missed"]}
    assert not missing, missing
    assert r["recall"] == 1.0 and r["steps_detected"] == r["steps_total"] >= 7
    assert r["precision"] >= 0.8, r
    assert r["attacker_rank"] == 1
    inc = r["incident"]
    assert inc and inc["holds_all_attack_breaches"] and inc["phases_in_order"], inc
    assert inc["phases"][0] == "entry" and inc["phases"][-1] == "impact"
    assert "new device 10.10.10.157" in inc["title"]


def test_breaches_point_at_the_attackers_sessions_and_packets(detected: Path) -> None:
    with Store(detected, readonly=True) as st:
        cid, packets = st.execute("SELECT capture_id, packets FROM captures WHERE path LIKE '%incident%'").fetchone()
        rows = st.execute("SELECT model, device, sessions, refs, explanation FROM breaches"
                          " WHERE device = '10.10.10.157'").fetchall()
        assert len(rows) >= 14
        for model, _, sess, refs, expl in rows:
            sids, refs = json.loads(sess), json.loads(refs)
            assert sids and refs, model
            assert all(PacketRef.unpack(r).capture_id == cid and 0 < PacketRef.unpack(r).frame <= packets
                       for r in refs)
            found = st.execute(f"SELECT COUNT(*) FROM sessions WHERE session_id IN ({','.join('?' * len(sids))})",
                               sids).fetchone()[0]
            assert found == len(sids), model
            assert "learning" in expl or "baseline" in expl or "first seen" in expl, expl
        rdp = st.execute("SELECT explanation FROM breaches WHERE model = 'net.data_volume'").fetchone()[0]
        assert "10.10.10.157 sent to 10.20.20.10" in rdp and "port 3389" in rdp


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_admin_rdp_evidence_frame_is_the_cookie(plant: dict[str, Path], detected: Path) -> None:
    with Store(detected, readonly=True) as st:
        refs = json.loads(st.execute("SELECT refs FROM breaches WHERE model = 'rdp.admin'")
                          .fetchone()[0])
    frame = PacketRef.unpack(refs[0]).frame
    out = subprocess.run(["tshark", "-r", str(plant["attack"] / "incident.pcapng.gz"), "-Y",
                          f"frame.number == {frame}", "-T", "fields", "-e", "ip.src", "-e", "rdp.rt_cookie"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "10.10.10.157\tCookie: mstshash=Administrator", out


def test_attack_free_day_of_another_seed(plant: dict[str, Path]) -> None:
    store = plant["base"] / "free.sqlite"
    zones = Zones.load(ZONES)
    with Store(store) as st:
        Ingest(st, zones, mode="learn").run([plant["attack"] / "learn.pcapng.gz"])
        res = Ingest(st, zones).run([plant["free"] / "incident.pcapng.gz"]).detection
        assert not res.cold
        assert res.incidents == []
        assert all(b.score < 0.5 for b in res.breaches), [(b.model, b.score) for b in res.breaches]
        assert st.execute("SELECT COUNT(*) FROM incidents").fetchone()[0] == 0


def test_eval_command_prints_the_comparison(plant: dict[str, Path], detected: Path) -> None:
    a = plant["attack"]
    res = CliRunner().invoke(main, ["eval", "--truth", str(a / "ground_truth.json"), "--store", str(detected)])
    assert res.exit_code == 0, res.output
    assert "Recall: 100%" in res.output
    assert "Attacker's rank by threat score: 1 of" in res.output
    assert "holds the whole attack: yes; phases in order: yes" in res.output
    assert "\n      - " not in res.output  # no expected model missed
    assert "detected ics_commands (impact)" in res.output


def test_analyze_json_with_learning_matches_schema(plant: dict[str, Path], tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    a = plant["attack"]
    res = CliRunner().invoke(main, ["analyze", "--learn", str(a / "learn.pcapng.gz"), "--zones", str(ZONES),
                                    "--json", str(a / "incident.pcapng.gz")])
    assert res.exit_code == 0, res.stderr
    rep = json.loads(res.stdout)
    schema = json.loads((ROOT / "core" / "data" / "analyze.schema.json").read_text())
    jsonschema.validate(rep, schema)
    assert rep["detection"]["baseline"] == "mature"
    assert all(m["state"] == "active" for m in rep["detection"]["models"])
    assert len(rep["incidents"]) == 1 and rep["threat"][0]["device"] == "10.10.10.157"
    b = rep["breaches"][0]
    assert b["evidence"]["packets"][0]["capture_id"] == 2


def test_live_checkpoints_and_small_batches_give_the_same_breaches(plant: dict[str, Path], detected: Path,
                                                                   tmp_path: Path) -> None:
    zones = Zones.load(ZONES)
    with Store(tmp_path / "live.sqlite") as st:
        Ingest(st, zones, mode="learn").run([plant["attack"] / "learn.pcapng.gz"])
        Ingest(st, zones).run([plant["attack"] / "incident.pcapng.gz"], commit="batch", chunk_packets=8192,
                              detect_every_s=900)
        live = st.execute("SELECT breach_id, model, score, sessions FROM breaches ORDER BY breach_id").fetchall()
        n_inc = st.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
    with Store(detected, readonly=True) as st:
        whole = st.execute("SELECT breach_id, model, score, sessions FROM breaches ORDER BY breach_id").fetchall()
    assert live == whole
    assert n_inc == 1
