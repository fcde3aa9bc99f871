"""Detection on the real captures (tests/data/real): a cold start (no baseline) still raises the
PLC Stop and the program upload of s7comm_snap7.pcap and the DNP3 cold and warm restarts, with
explanations and the right frames; and every capture runs through every model, cold and warm."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwatch.core.capture.files import read_batches
from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.detection.models import MODELS, load_config
from plantwatch.core.detection.records import Breach
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.synth.pcapwriter import write_pcap

REAL = Path(__file__).parent / "data" / "real"
CAPTURES = sorted(p for p in REAL.iterdir() if p.suffix in (".pcap", ".pcapng"))


def _cold(path: Path, tmp_path: Path):
    with Store(tmp_path / "cold.sqlite") as st:
        return Ingest(st).run([path]).detection


def _frames(b: Breach) -> list[int]:
    return [PacketRef.unpack(r).frame for r in b.refs]


def test_snap7_cold_start_raises_the_stop_and_the_upload(tmp_path: Path) -> None:
    res = _cold(REAL / "s7comm_snap7.pcap", tmp_path)
    assert res.cold
    stop = [b for b in res.breaches if "PLC Stop" in b.details.get("critical", [])]
    assert len(stop) == 1
    b = stop[0]
    assert b.model == "ics.new_action" and b.device == "134.217.61.131"
    assert b.devices == ["134.217.61.131", "134.217.61.211"]
    assert 57 in _frames(b)  # tshark: frame 57 is the PLC Stop job (s7comm.param.func == 0x29)
    assert "PLC Stop" in b.explanation and "no baseline yet" in b.explanation
    assert b.score >= 0.9
    up = [b for b in res.breaches if b.model == "ics.reprogram"]
    assert len(up) == 1
    assert "Start Upload" in up[0].details["operations"]
    assert _frames(up[0])[0] == 17  # tshark: the first Start Upload job (s7comm.param.func == 0x1d)
    assert up[0].score >= 0.9 and "REPROGRAM operation(s)" in up[0].explanation
    assert len(res.incidents) == 1 and res.incidents[0].device == "134.217.61.131"


def test_dnp3_cold_start_raises_the_restarts(tmp_path: Path) -> None:
    res = _cold(REAL / "dnp3_test_data_part1.pcap", tmp_path)
    crit = {}
    for b in res.breaches:
        for name in b.details.get("critical", []):
            crit.setdefault(name, []).append(b)
    assert {"Cold Restart", "Warm Restart"} <= set(crit)
    cold = {b.device: _frames(b) for b in crit["Cold Restart"]}
    # tshark: dnp3.al.func == 13 in frames 70 and 76; the masters polled too little to be HMIs
    # (14 and 2 reads), so their new writes (func 2) and unsolicited controls (20, 21) join the breach
    assert cold == {"10.0.0.8": [33, 37, 70], "10.0.0.9": [76, 86, 88, 109]}
    warm = crit["Warm Restart"][0]
    assert warm.device == "10.0.0.8" and 143 in _frames(warm)  # dnp3.al.func == 14
    assert _frames(warm)[0] == 124  # its Disable Unsolicited before it (dnp3.al.func == 21)
    for b in crit["Cold Restart"] + crit["Warm Restart"]:
        assert b.devices[1] == "10.0.0.3" and "Restart" in b.explanation
        assert b.explanation.endswith(".")


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_every_capture_runs_through_every_model(path: Path, tmp_path: Path) -> None:
    """Cold on the whole capture, then warm: learn on its first half, detect on the second with
    the network maturity threshold at zero, so every model (also those needing history) runs."""
    cold = _cold(path, tmp_path)
    assert set(cold.models) == set(MODELS)
    recs = []
    for b in read_batches([path]):
        for i in range(len(b)):
            o, n = int(b.offset[i]), int(b.caplen[i])
            recs.append((int(b.ts[i]), b.data[o:o + n].tobytes()))
    half = len(recs) // 2
    a, c = tmp_path / "a.pcap", tmp_path / "b.pcap"
    write_pcap(a, recs[:half], nanosecond=True)
    write_pcap(c, recs[half:], nanosecond=True)
    cfg = load_config()
    cfg["baseline"]["network_min_hours"] = 0.0
    with Store(tmp_path / "warm.sqlite") as st:
        Ingest(st, mode="learn", models=cfg).run([a])
        res = Ingest(st, models=cfg).run([c]).detection
        assert not res.cold and set(res.models.values()) == {"active"}
        for b in res.breaches:
            assert 0 <= b.score <= 1 and b.explanation and b.refs
        stored = st.execute("SELECT COUNT(*) FROM breaches").fetchone()[0]
        assert stored == len(res.breaches)
