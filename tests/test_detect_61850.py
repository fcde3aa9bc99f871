"""Detection at cold start on IEC 61850 MMS, GOOSE and PROFINET DCP (tests/data/real): an MMS
stop, kill and download, a PROFINET DCP Set of a station's IP and a GOOSE frame replayed from a new
MAC each raise a breach, with no baseline; the plain captures raise none of these."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.detection.records import Breach
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store

REAL = Path(__file__).parent / "data" / "real"
MMS = "IEC61850_MMS_Specific_Commands_{}.pcap"


def _cold(path: Path, tmp_path: Path):
    with Store(tmp_path / "cold.sqlite") as st:
        return Ingest(st).run([path]).detection


def _frames(b: Breach) -> list[int]:
    return [PacketRef.unpack(r).frame for r in b.refs]


@pytest.mark.parametrize(("name", "model", "op", "frame"), [
    ("mms-stopRequest", "ics.new_action", "stop", 16),
    ("mms-killRequest", "ics.new_action", "kill", 12),
    ("mms-initiateDownloadSequence", "ics.reprogram", "initiateDownloadSequence", 16),
])
def test_mms_cold_start(name: str, model: str, op: str, frame: int, tmp_path: Path) -> None:
    res = _cold(REAL / MMS.format(name), tmp_path)
    assert res.cold
    hits = [b for b in res.breaches if b.model == model and op in b.details["operations"]]
    assert len(hits) == 1, [(b.model, b.details) for b in res.breaches]
    assert frame in _frames(hits[0])  # tshark: mms.confirmedServiceRequest of that frame
    assert op in hits[0].explanation


def test_profinet_dcp_set_ip_cold_start(tmp_path: Path) -> None:
    res = _cold(REAL / "profinet_PROFINET-RT-DCP_ChangeIPUsingDCP.pcap", tmp_path)
    hits = [b for b in res.breaches if "DCP Set IP" in b.details.get("critical", [])]
    assert len(hits) == 1
    b = hits[0]
    assert b.device == "00:0c:29:ba:09:ea" and "08:00:06:93:cf:32" in b.devices
    assert _frames(b) == [3]  # tshark: pn_dcp.service_id 4 (Set), type 0 (request)


def _replay(src: Path, dst: Path, new_mac: bytes) -> None:
    """The capture, then its first GOOSE frame again one second after the last, sent from
    `new_mac`: an old stNum/sqNum of a control block from a MAC that never published it."""
    raw = src.read_bytes()
    assert raw[:4] == b"\xd4\xc3\xb2\xa1"  # little-endian classic pcap
    off, recs = 24, []
    while off + 16 <= len(raw):
        ts_s, ts_u, incl, _ = struct.unpack("<IIII", raw[off : off + 16])
        recs.append((ts_s, ts_u, raw[off + 16 : off + 16 + incl]))
        off += 16 + incl
    first = recs[0][2]
    frame = first[:6] + new_mac + first[12:]
    dst.write_bytes(raw + struct.pack("<IIII", recs[-1][0] + 1, recs[-1][1], len(frame), len(frame))
                    + frame)


def test_goose_replay_from_a_new_mac_cold_start(tmp_path: Path) -> None:
    src = REAL / "IEC61850_GOOSE_Sample_File_GOOSE.pcap"
    assert not [b for b in _cold(src, tmp_path / "a").breaches if "GOOSE" in str(b.details)]
    dst = tmp_path / "replay.pcap"
    _replay(src, dst, bytes.fromhex("0abbfe666666"))
    res = _cold(dst, tmp_path / "b")
    hits = [b for b in res.breaches if "GOOSE sequence went backwards" in b.details.get("critical", [])]
    assert len(hits) == 1
    assert hits[0].device == "0a:bb:fe:66:66:66"
    assert _frames(hits[0]) == [452]  # the appended frame (the capture has 451)


@pytest.fixture(autouse=True)
def _dirs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()


def test_profinet_station_name_in_the_inventory() -> None:
    from plantwatch.core.capture.files import read_batches
    from plantwatch.core.decode import Decoder
    from plantwatch.core.flows.sessions import SessionTracker
    from plantwatch.core.inventory.devices import DeviceInventory
    from plantwatch.core.inventory.zones import Zones

    tr, dec, inv = SessionTracker(), Decoder(), DeviceInventory(Zones())
    for b in read_batches([str(REAL / "profinet_PROFINET-RT-DCP_ChangeIPUsingDCP.pcap")]):
        d = dec.decode(b)
        inv.update(d.packets, d.ops, tr.update(d.packets, d.ops), endpoints=tr.last_endpoints)
    inv.update(d.packets.clear(), None, tr.flush())
    devs = {r["device"]: r for r in inv.devices().iter_rows(named=True)}
    # tshark frame 2: Ident Ok from 08:00:06:93:cf:32, NameOfStation "X208-BORD"
    assert devs["08:00:06:93:cf:32"]["name"] == "X208-BORD"
    assert devs["08:00:06:93:cf:32"]["role"] == "plc"
