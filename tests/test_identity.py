"""Identity merged per device, stored, and a change between two captures raising
`ics.identity_changed` with old and new values and both frames."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.decode.identity import IDENTITY
from plantwatch.core.inventory.identity import IdentityTable
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store import triage
from plantwatch.core.store.database import Store
from plantwatch.core.synth import frames as f
from plantwatch.core.synth.pcapwriter import write_pcap
from tests.oracle import HAVE_TSHARK, tshark_fields

REAL = Path(__file__).parent / "data" / "real"
PLC_MAC, EWS_MAC = "00:0e:8c:11:22:33", "00:14:22:aa:bb:cc"
PLC, EWS = "10.20.20.10", "10.20.20.50"
T0 = 1_700_000_000_000_000_000
HOUR = 3600 * 1_000_000_000


def _obs(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame([{"file_id": fid, "frame": fr, "ts": ts, "hi": 0, "lo": 7, "component": "",
                          "attribute": a, "value": v, "source": src} for fid, fr, ts, a, v, src in rows],
                        schema=IDENTITY)


def test_identity_table_keeps_first_and_last_frames_and_reports_changes() -> None:
    t = IdentityTable()
    assert t.update(_obs([(1, 4, 10, "firmware", "V3.2.7", "s7comm"), (1, 9, 20, "firmware", "V3.2.7", "s7comm"),
                          (1, 5, 11, "vendor_id", "1", "enip")])).height == 0
    a = {r["attribute"]: r for r in t.attributes().iter_rows(named=True)}
    assert a["firmware"]["first_ref"] == PacketRef(1, 4).pack() and a["firmware"]["last_ref"] == PacketRef(1, 9).pack()
    assert a["firmware"]["seen"] == 2
    assert a["vendor"]["value"] == "Rockwell Automation/Allen-Bradley"  # ODVA vendor id 1
    ch = t.update(_obs([(2, 3, 30, "firmware", "V3.3.0", "s7comm")]))
    assert ch.select("attribute", "old_value", "new_value", "old_ref", "new_ref").row(0) == (
        "firmware", "V3.2.7", "V3.3.0", PacketRef(1, 9).pack(), PacketRef(2, 3).pack())
    # a value that goes back is a change again; a vendor id is not a tracked attribute
    assert sorted(t.update(_obs([(2, 8, 40, "firmware", "V3.2.7", "s7comm"), (2, 8, 40, "vendor_id", "47", "enip")])
                           )["attribute"].to_list()) == ["firmware", "vendor"]


def _plc_capture(path: Path, t0: int, fw: tuple[int, int], serial: str) -> None:
    """One engineering station reading SZL 0x0011 and 0x001C from one S7-300 (fw: the firmware
    record's Ausbg low byte and first Ausbe byte, so (2, 7) is V2.7.0)."""
    c = f.Leg.of(EWS_MAC, PLC_MAC, EWS, PLC)
    s = f.Leg.of(PLC_MAC, EWS_MAC, PLC, EWS)
    sess = f.TcpSession(c, s, 49300, 102, isn_client=5000, isn_server=70000)
    recs = sess.handshake(t0)
    comp = [(1, "S7300 station_1", 24, 8), (2, "PLC_1", 24, 8), (5, serial, 24, 8),
            (7, "CPU 315-2 PN/DP", 32, 0)]
    entries_1c = [bytes([0, i]) + v.encode().ljust(w, b"\x00") + bytes(pad) for i, v, w, pad in comp]
    pairs = [(f.s7_szl_read(1, 0x0011), f.s7_szl_response(1, 0x0011, 0, f.szl_0011_entries(fw=fw))),
             (f.s7_szl_read(2, 0x001C), f.s7_szl_response(2, 0x001C, 0, entries_1c))]
    for req, resp in pairs:
        recs += sess.send(recs[-1][0] + 1_000_000, req, True)
        recs += sess.send(recs[-1][0] + 1_000_000, resp, False)
    write_pcap(path, recs)


def test_firmware_change_between_two_captures_raises_the_breach(tmp_path: Path) -> None:
    one, two = tmp_path / "before.pcap", tmp_path / "after.pcap"
    _plc_capture(one, T0, (2, 7), "S C-B1U393142011")
    _plc_capture(two, T0 + 24 * HOUR, (3, 0), "S C-B1U393142011")
    with Store(tmp_path / "s.sqlite") as st:
        first = Ingest(st).run([one]).detection
        assert not [b for b in first.breaches if b.model == "ics.identity_changed"]
        res = Ingest(st).run([two]).detection
        got = [b for b in res.breaches if b.model == "ics.identity_changed"]
        assert len(got) == 1
        b = got[0]
        assert b.device == PLC and b.attack_ids == ["T0839", "T0849"]
        assert [(c["attribute"], c["old"], c["new"]) for c in b.details["changes"]] == [
            ("firmware", "V2.7.0", "V3.0.0")]
        caps = {r[1]: r[0] for r in st.execute("SELECT capture_id, path FROM captures")}
        old_ref, new_ref = (PacketRef.unpack(r) for r in b.refs)
        assert old_ref.capture_id == caps[str(one)] and new_ref.capture_id == caps[str(two)]
        assert "firmware 'V2.7.0' -> 'V3.0.0'" in b.explanation
        stored = dict(st.execute("SELECT attribute, value FROM device_identity WHERE device = ?", (PLC,)).fetchall())
        assert stored["firmware"] == "V3.0.0" and stored["model"] == "6ES7 315-2EH14-0AB0"
        assert stored["serial"] == "S C-B1U393142011" and stored["module"] == "CPU 315-2 PN/DP"
        row = st.execute("SELECT old_value, new_value, old_ref, new_ref FROM identity_changes").fetchall()
        assert row == [("V2.7.0", "V3.0.0", b.refs[0], b.refs[1])]
        assert json.loads(st.execute("SELECT attack_ids FROM breaches WHERE model = 'ics.identity_changed'"
                                     ).fetchone()[0]) == ["T0839", "T0849"]


def test_snap7_identity_stored_with_proving_frames(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st:
        Ingest(st).run([REAL / "s7comm_snap7.pcap"])
        rows = {r[0]: r[1:] for r in st.execute(
            "SELECT attribute, value, first_ref, last_ref, source FROM device_identity WHERE device = ?",
            ("134.217.61.211",))}
    assert rows["model"][0] == "6ES7 315-2EH14-0AB0" and rows["firmware"][0] == "V3.2.7"
    # SZL 0x0011 answered twice (tshark frames 4 and 14), 0x001C once on frame 8
    assert PacketRef.unpack(rows["firmware"][1]).frame == 4 and PacketRef.unpack(rows["firmware"][2]).frame == 14
    assert PacketRef.unpack(rows["serial"][1]).frame == 8 and rows["serial"][3] == "s7comm"


@pytest.mark.tshark
@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark not installed")
def test_analyze_json_carries_identity_equal_to_tshark() -> None:
    """The S7-300 of s7comm_snap7 (s7comm_diag_read has no SZL 0x11/0x1C answers): order number,
    firmware and module name in `analyze --json`, schema-valid, equal to tshark's SZL fields."""
    jsonschema = pytest.importorskip("jsonschema")
    from tests.test_cli_analyze import analyze_json

    data = analyze_json(str(REAL / "s7comm_snap7.pcap"))
    schema = json.loads((Path(__file__).parent.parent / "core" / "data" / "analyze.schema.json").read_text())
    jsonschema.validate(data, schema)
    dev = next(d for d in data["devices"] if d["device"] == "134.217.61.211")
    got = {a["attribute"]: a for a in dev["identity"]}
    t = tshark_fields(REAL / "s7comm_snap7.pcap", ["s7comm.szl.xy11.0001.anz", "s7comm.szl.xy11.0001.ausbg",
                                                   "s7comm.szl.xy11.0001.ausbe", "s7comm.szl.001c.0007.cputypname",
                                                   "s7comm.szl.001c.0002.name"],
                      "s7comm.szl.xy11.0001.anz || s7comm.szl.001c.0007.cputypname")
    mlfb = t[4]["s7comm.szl.xy11.0001.anz"].split(",")
    g, e = (int(x) for x in (t[4]["s7comm.szl.xy11.0001.ausbg"].split(",")[2],
                             t[4]["s7comm.szl.xy11.0001.ausbe"].split(",")[2]))  # record index 0x0007
    assert got["model"]["value"] == mlfb[0].strip()
    assert got["firmware"]["value"] == f"V{g & 0xFF}.{e >> 8}.{e & 0xFF}"
    assert got["module"]["value"] == t[8]["s7comm.szl.001c.0007.cputypname"]
    assert got["module_name"]["value"] == t[8]["s7comm.szl.001c.0002.name"]
    assert got["model"]["first_packet"]["frame"] == 4 and got["model"]["last_packet"]["frame"] == 14
    assert dev["cpe"][0]["names"][1].startswith("cpe:2.3:o:siemens:cpu_315-2_pn\\/dp_firmware:v3.2.7")
    assert dev["vulnerabilities"] == []
    assert not any("identity" in d for d in data["devices"] if d["device"] == "134.217.61.131")


def _covering(st: Store) -> dict[str, tuple[str, str]]:
    return {m: (d, lab) for m, d, lab in st.execute(
        "SELECT b.model, t.disposition, t.label FROM breach_triage t JOIN breaches b USING (breach_id)")}


def test_firmware_change_inside_a_maintenance_window_is_labelled_not_alarmed(tmp_path: Path) -> None:
    """A window declared ahead of the update, naming the PLC as its target, covers the change
    although the old firmware was last stated a day before the window opened; windows on another
    device, or closed before the new firmware was first stated, do not."""
    one, two = tmp_path / "before.pcap", tmp_path / "after.pcap"
    _plc_capture(one, T0, (2, 7), "S C-B1U393142011")
    _plc_capture(two, T0 + 24 * HOUR, (3, 0), "S C-B1U393142011")
    with Store(tmp_path / "s.sqlite") as st:
        Ingest(st).run([one])
        start = T0 + 24 * HOUR - HOUR
        triage.add_window(st, "other PLC update", start, start + 2 * HOUR, [EWS], ["10.20.20.99"], ["REPROGRAM"])
        triage.add_window(st, "too early", start, T0 + 24 * HOUR, [EWS], [PLC], ["REPROGRAM"])
        Ingest(st).run([two])
        assert "ics.identity_changed" not in _covering(st)
        _, report = triage.add_window(st, "CPU firmware V3.0", start, start + 2 * HOUR, [EWS], [PLC], ["REPROGRAM"])
        assert report.window == 1
        assert _covering(st)["ics.identity_changed"] == ("window", "CPU firmware V3.0")
        score = st.execute("SELECT score FROM breaches WHERE model = 'ics.identity_changed'").fetchone()[0]
        assert score <= 0.1


def test_a_window_declared_ahead_labels_the_change_when_it_is_detected(tmp_path: Path) -> None:
    one, two = tmp_path / "before.pcap", tmp_path / "after.pcap"
    _plc_capture(one, T0, (2, 7), "S C-B1U393142011")
    _plc_capture(two, T0 + 24 * HOUR, (3, 0), "S C-B1U393142011")
    with Store(tmp_path / "s.sqlite") as st:
        Ingest(st).run([one])
        start = T0 + 24 * HOUR - HOUR
        triage.add_window(st, "CPU firmware V3.0", start, start + 2 * HOUR, [EWS], [PLC], [])
        Ingest(st).run([two])
        assert _covering(st)["ics.identity_changed"] == ("window", "CPU firmware V3.0")


@pytest.mark.tshark
@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark not installed")
def test_cip_and_bacnet_identity_in_json_and_device_screen_equal_tshark(tmp_path: Path) -> None:
    """The 1756-ENBT's vendor, product and revision (Get_Attributes_All, frames 34-40) and the
    vendor of a BACnet device behind a router behind a BBMD (its I-Ams name no product or
    revision), in `analyze --json` and on the device screen, as tshark decodes them."""
    import html
    import re

    from plantwatch.core.views.console.device_detail import device_detail
    from plantwatch.tui.screens.device import wire_identity_text
    from tests.oracle import tshark_pdml
    from tests.test_cli_analyze import analyze_json

    cip, bac = REAL / "openics_EIP-FirmwareChange_10650-10700.pcap", REAL / "bacnet_sample.pcap"
    t = tshark_fields(cip, ["cip.id.product_name", "cip.id.major_rev", "cip.id.minor_rev"], "cip.id.product_name")
    frames = sorted(t)
    vendor = re.search(r'name="cip.id.vendor_id" showname="Vendor ID: (.*?) \(0x', tshark_pdml(cip, "cip.id.vendor_id")[0])
    want = {"vendor": vendor.group(1), "product": t[frames[0]]["cip.id.product_name"],
            "firmware": f"{t[frames[0]]['cip.id.major_rev']}.{int(t[frames[0]]['cip.id.minor_rev']):03d}"}
    assert want == {"vendor": "Rockwell Automation/Allen-Bradley", "product": "1756-ENBT/A", "firmware": "4.003"}
    dev = next(d for d in analyze_json(str(cip))["devices"] if d["device"] == "192.168.10.120")
    got = {a["attribute"]: a for a in dev["identity"]}
    assert {k: got[k]["value"] for k in want} == want
    assert {(got[k]["first_packet"]["frame"], got[k]["last_packet"]["frame"]) for k in want} == {(frames[0], frames[-1])}
    iam = tshark_pdml(bac, "frame.number == 12")[0]
    bvendor = html.unescape(re.search(r'showname="Vendor Identifier: (.*?) \(\d+\)"', iam).group(1))
    comp = "forwarded from 10.21.56.7:47808, network 19301 address 01"
    bdev = next(d for d in analyze_json(str(bac))["devices"] if d["device"] == "10.21.86.4")
    bgot = {a["attribute"]: a for a in bdev["identity"] if a["component"] == comp}
    assert bgot["vendor"]["value"] == bvendor == "Schneider Electric"
    assert bgot["vendor"]["first_packet"]["frame"] == 12 and bgot["device_instance"]["value"] == "930101"
    with Store(tmp_path / "s.sqlite") as st:
        Ingest(st).run([cip])
        screen = wire_identity_text(device_detail(st, "192.168.10.120")).plain
    for k, v in want.items():
        assert f"{k:>18}  {v}  enip, capture 1 frame {frames[0]} … frame {frames[-1]}, {len(frames)} answers" in screen
