"""The evidence that leaves the console: the incident bundle (opened in headless Chromium, its
pcapng read back by tshark and compared with the original capture), the plant report, the
console's export key."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwatch.core.views.export.attack import technique_names
from plantwatch.tui.app import make_app
from plantwatch.tui.cli import main
from plantwatch.tui.screens.incidents import IncidentScreen
from tests.browser_support import count_colour, dump_dom, needs_chromium, screenshot
from tests.tui_support import (
    ATTACKER,
    HOSTILE,
    needs_demo,
    settle,
    wait_until,
)

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
REPROGRAM = "ics.reprogram"


def _incident_id(store: Path) -> int:
    with sqlite3.connect(store) as db:
        return int(db.execute("SELECT incident_id FROM incidents ORDER BY score DESC").fetchone()[0])


def _export(store: Path, out: Path, *extra: str) -> None:
    r = CliRunner().invoke(main, ["export", "incident", str(_incident_id(store)), "--store", str(store),
                                  "--out", str(out), *extra])
    assert r.exit_code == 0, r.output
    assert "evidence sessions" in r.output


@pytest.fixture(scope="session")
def bundle(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's top incident exported once for the tests that only read the bundle."""
    out = tmp_path_factory.mktemp("export") / "bundle"
    _export(demo_store, out)
    return out


def _text(dom: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


@needs_demo
def test_bundle_files_checksums_and_same_bytes(tmp_path: Path, demo_store: Path, bundle: Path) -> None:
    out = bundle
    names = sorted(p.name for p in out.iterdir())
    assert names == ["SHA256SUMS", "baselines.json", "evidence.pcapng", "incident.json", "report.html"]
    sums = dict(reversed(line.split("  ")) for line in (out / "SHA256SUMS").read_text().splitlines())
    assert sorted(sums) == ["baselines.json", "evidence.pcapng", "incident.json", "report.html"]
    for name, digest in sums.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    again = tmp_path / "again"
    _export(demo_store, again)
    for name in names:
        assert (again / name).read_bytes() == (out / name).read_bytes(), f"{name} differs between two exports"

    data = json.loads((out / "incident.json").read_text())
    with sqlite3.connect(demo_store) as db:
        ids = {r[0] for r in db.execute("SELECT breach_id FROM breaches WHERE incident_id = ?",
                                        (data["incident"]["incident_id"],))}
    assert {b["breach_id"] for b in data["breaches"]} == ids and len(ids) >= 10
    assert data["incident"]["device"] == ATTACKER
    assert all(t["name"] != t["id"] for p in data["incident"]["phases"] for t in p["techniques"])
    base = json.loads((out / "baselines.json").read_text())
    assert base["baseline"]["maturity"] == "mature"
    assert base["devices"][ATTACKER] is None                 # the new device: nothing learned
    assert base["devices"]["10.20.20.10"]["sessions"] > 100  # the WinCC server it RDPed into
    assert any(e["s"] == "10.20.20.10" and e["port"] == 3389 for e in base["edges"])


@needs_demo
def test_bundle_refuses_missing_capture_and_unknown_incident(tmp_path: Path, demo_store: Path) -> None:
    store = tmp_path / "moved.sqlite"
    shutil.copy(demo_store, store)
    with sqlite3.connect(store) as db:
        db.execute("UPDATE captures SET path = '/nowhere/' || replace(path, rtrim(path, replace(path, '/', '')), '')")
    r = CliRunner().invoke(main, ["export", "incident", str(_incident_id(store)), "--store", str(store),
                                  "--out", str(tmp_path / "b")])
    assert r.exit_code == 2
    assert "incident.pcapng.gz" in r.output and "--captures" in r.output and "Traceback" not in r.output
    # pointed at the folder the captures are in now, it finds them by name
    _export(store, tmp_path / "b", "--captures", str(Path(__file__).resolve().parent.parent / "demo_data"))
    r = CliRunner().invoke(main, ["export", "incident", "12345", "--store", str(store), "--out", str(tmp_path / "c")])
    assert r.exit_code == 2 and "no incident 12345" in r.output
    assert f"{_incident_id(store)} (Network reconnaissance" in r.output    # what it holds instead


def _tshark_fields(path: Path, *fields: str, flt: str | None = None) -> list[list[str]]:
    cmd = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
           "-E", "aggregator=\x1f"]
    for f in fields:
        cmd += ["-e", f]
    if flt:
        cmd += ["-Y", flt]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return [line.split("\t") for line in r.stdout.splitlines()]


@needs_demo
@needs_tshark
@pytest.mark.tshark
def test_bundle_pcapng_read_back_with_tshark(bundle: Path) -> None:
    out = bundle
    data = json.loads((out / "incident.json").read_text())
    rows = _tshark_fields(out / "evidence.pcapng", "frame.number", "frame.comment", "s7comm.param.func")
    assert len(rows) == data["evidence"]["packets"] > 1000
    comments = [r[1].split("\x1f") for r in rows]
    assert all(any(c.startswith("source: incident.pcapng.gz frame ") for c in cs) for cs in comments)
    named = " ".join(c for cs in comments for c in cs)
    for b in data["breaches"]:           # every breach is named by the packets that prove it
        assert str(b["breach_id"]) in named
    rep = next(b for b in data["breaches"] if b["model_id"] == REPROGRAM)
    proof = [r for r, cs in zip(rows, comments, strict=True)
             if f"evidence packet of breach {rep['breach_id']}: Uncommon ICS Reprogram [{REPROGRAM}]" in cs]
    assert proof and proof[0][2] == "0x1a"    # the S7 Request Download itself


@needs_demo
@needs_tshark
@pytest.mark.tshark
def test_bundle_holds_every_packet_of_an_evidence_session(demo_store: Path, bundle: Path) -> None:
    """The RDP session of the admin-RDP breach: as many packets in the bundle as tshark finds for
    that connection in the original capture."""
    out = bundle
    data = json.loads((out / "incident.json").read_text())
    rdp = next(b for b in data["breaches"] if b["model_id"] == "rdp.admin")
    sid = rdp["evidence"]["sessions"][0]
    with sqlite3.connect(demo_store) as db:
        cport, sport = db.execute("SELECT client_port, server_port FROM sessions WHERE session_id = ?",
                                  (sid,)).fetchone()
    flt = f"ip.addr=={ATTACKER} && ip.addr==10.20.20.10 && tcp.port=={cport} && tcp.port=={sport}"
    original = _tshark_fields(Path(__file__).resolve().parent.parent / "demo_data" / "incident.pcapng.gz",
                              "frame.number", flt=flt)
    bundled = _tshark_fields(out / "evidence.pcapng", "frame.number",
                             flt=f'frame.comment contains "session {sid} of breach"')
    assert len(original) > 100
    assert len(bundled) == len(original)


@needs_demo
@needs_chromium
def test_bundle_html_in_chromium(tmp_path: Path, bundle: Path) -> None:
    out = bundle
    data = json.loads((out / "incident.json").read_text())
    dom = dump_dom(out / "report.html", tmp_path)
    text = _text(dom)
    inc = data["incident"]
    assert inc["title"] in text
    assert inc["narrative"][:80] in text
    for name in ("T0843 Program Download", "T0886 Remote Services", "T0846 Remote System Discovery"):
        assert name in text
    for b in data["breaches"]:
        assert b["explanation"][:60] in text
    assert "baseline_failures" in text and "DESKTOP-4H7KQ2P" in text
    assert "wincc01.corp.foodplant.local" in text
    assert dom.count("<polyline") >= 2 and "<svg" in dom
    assert not re.search(r'(src|href)="(https?:)?//', dom), "the report must open with no network"
    _w, _h, rows = screenshot(out / "report.html", tmp_path, size=(1200, 1700))
    assert count_colour(rows, (0xC0, 0x39, 0x2B)) > 300     # the attacker's threat line is drawn


def test_every_model_technique_has_a_name() -> None:
    from plantwatch.core.detection.models import MODELS

    names = technique_names()
    missing = sorted({t for m in MODELS.values() for t in m.attack_ids} - set(names))
    assert not missing


@needs_demo
@needs_chromium
def test_plant_report_renders_in_chromium(tmp_path: Path, demo_store: Path) -> None:
    page = tmp_path / "plant.html"
    r = CliRunner().invoke(main, ["report", "--store", str(demo_store), "--html", str(page)])
    assert r.exit_code == 0, r.output
    text = _text(dump_dom(page, tmp_path))
    for heading in ("Incidents", "Breaches by model", "Breaches by device", "Inventory by zone and role",
                    "Top talkers", "Learning state"):
        assert heading in text
    assert "Network reconnaissance" in text and "Unusual Admin RDP Session" in text
    assert re.search(r"Industrial\s+12\b", text)                # 12 devices in the OT zone
    assert "wincc01.corp.foodplant.local" in text and "mature" in text
    _w, _h, rows = screenshot(page, tmp_path, size=(1200, 1700))
    assert count_colour(rows, (0xC0, 0x39, 0x2B)) > 300     # the threat chart is drawn
    later = tmp_path / "later.html"
    r = CliRunner().invoke(main, ["report", "--store", str(demo_store), "--since", "2026-03-05",
                                  "--html", str(later)])
    assert r.exit_code == 0 and "0 incident(s), 0 breach(es)" in r.output
    r = CliRunner().invoke(main, ["report", "--store", str(demo_store), "--since", "last week",
                                  "--html", str(later)])
    assert r.exit_code == 2 and "--since last week" in r.output


@needs_chromium
def test_plant_report_shows_wire_strings_as_text(tmp_path: Path, hostile_store: Path) -> None:
    page = tmp_path / "hostile.html"
    r = CliRunner().invoke(main, ["report", "--store", str(hostile_store), "--html", str(page)])
    assert r.exit_code == 0, r.output
    raw = page.read_text()
    assert "\x1b" not in raw
    text = _text(dump_dom(page, tmp_path))
    assert HOSTILE.replace("\x1b", "\\x1b") in text


@needs_demo
def test_console_export_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_store: Path, bundle: Path) -> None:
    """In an incident, x writes the bundle and says where."""
    monkeypatch.setenv("PLANTWATCH_EXPORT_DIR", str(tmp_path))
    app = make_app(demo_store, source="demo store")
    iid = _incident_id(demo_store)

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("i")
            await settle(pilot)
            await pilot.press("enter")
            assert isinstance(app.screen, IncidentScreen)
            await settle(pilot)
            await pilot.press("x")
            out = tmp_path / f"incident-{iid}"
            await wait_until(pilot, lambda: any(str(out) in n.message and n.message.startswith("exported")
                                                for n in app._notifications), 120, "the export")
            assert (out / "SHA256SUMS").exists()
            assert (out / "report.html").read_bytes() == (bundle / "report.html").read_bytes()

    asyncio.run(go())
