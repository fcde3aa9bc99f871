"""Identity from the ICSNPP identity logs (`analyze --zeek`): the same attributes, spelled the
same way, as the packet path reads from the capture the logs were made from (which
tests/test_tshark_identity.py checks against tshark). The ICSNPP baselines mask their times
(XXXXXXXXXX.XXXXXX); the copies here get a real one, as a live Zeek writes."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from plantwatch.core.capture.files import read_batches
from plantwatch.core.decode import Decoder
from plantwatch.core.decode.addr import ip_texts
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store

ZEEK = Path(__file__).parent / "data" / "zeek"
MASK = "XXXXXXXXXX.XXXXXX"


def _copy(src: Path, dst: Path, ts: str, edit: tuple[str, str] | None = None) -> None:
    text = src.read_text().replace(MASK, ts)
    if edit:
        text = text.replace(*edit)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text)


def _stored(st: Store) -> dict[str, dict[str, tuple[str, str]]]:
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for dev, attr, value, source in st.execute("SELECT device, attribute, value, source FROM device_identity"
                                               " WHERE component = ''"):
        out.setdefault(dev, {})[attr] = (value, source)
    return out


def _packet_identity(path: Path) -> dict[str, dict[str, str]]:
    dec = Decoder()
    df = pl.concat([dec.decode(b).identity for b in read_batches([path])])
    out: dict[str, dict[str, str]] = {}
    for ip, r in zip(ip_texts(df["hi"].to_numpy(), df["lo"].to_numpy()), df.iter_rows(named=True), strict=True):
        out.setdefault(ip, {})[r["attribute"]] = r["value"]
    return out


def test_icsnpp_identity_logs_give_the_packet_paths_identity(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    _copy(ZEEK / "s7ident" / "s7comm_known_devices.log", logs / "s7comm_known_devices.log", "1700000000.250000")
    _copy(ZEEK / "enip" / "cip_identity.log", logs / "cip_identity.log", "1700000001.500000")
    with Store(tmp_path / "s.sqlite") as st:
        Ingest(st).run_zeek([logs])
        got = _stored(st)
        refs = st.execute("SELECT DISTINCT first_ref FROM device_identity").fetchall()
    s7 = _packet_identity(ZEEK / "s7ident" / "s7ident.pcap")["172.17.0.2"]
    assert {k: v for k, (v, _) in got["172.17.0.2"].items()} == {
        k: s7[k] for k in ("name", "module", "serial")} == {
        "name": "SNAP7-SERVER", "module": "CPU 315-2 PN/DP", "serial": "S C-C2UR28922012"}
    assert {s for _, s in got["172.17.0.2"].values()} == {"s7comm"}
    cip = _packet_identity(ZEEK / "enip" / "enip_cip_example.pcap")["10.1.1.164"]
    keys = ("vendor_id", "device_type", "product_code", "firmware", "serial", "product")
    assert {k: got["10.1.1.164"][k][0] for k in keys} == {k: cip[k] for k in keys}
    assert got["10.1.1.164"]["vendor"] == ("Rockwell Automation/Allen-Bradley", "enip")
    assert got["10.1.1.164"]["firmware"][0] == "4.003"
    assert len(refs) == 2  # each value proved by its log line (capture id, line)


def test_a_revision_change_between_two_zeek_runs_raises_the_breach(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _copy(ZEEK / "enip" / "cip_identity.log", one / "cip_identity.log", "1700000000.000000")
    _copy(ZEEK / "enip" / "cip_identity.log", two / "cip_identity.log", "1700086400.000000",
          ("\t4.3\t", "\t4.5\t"))
    with Store(tmp_path / "s.sqlite") as st:
        first = Ingest(st).run_zeek([one]).detection
        assert not [b for b in first.breaches if b.model == "ics.identity_changed"]
        res = Ingest(st).run_zeek([two]).detection
        got = [b for b in res.breaches if b.model == "ics.identity_changed"]
        assert len(got) == 1 and got[0].device == "10.1.1.164"
        assert [(c["attribute"], c["old"], c["new"]) for c in got[0].details["changes"]] == [
            ("firmware", "4.003", "4.005")]
