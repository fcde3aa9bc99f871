"""Identity from the ICSNPP identity logs (`analyze --zeek`): the same attributes, spelled the
same way, as the packet path reads from the capture the logs were made from (which
tests/test_tshark_identity.py checks against tshark). The ICSNPP baselines mask their times
(XXXXXXXXXX.XXXXXX); the copies here get a real one, as a live Zeek writes."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from plantwatch.core.capture.files import read_batches
from plantwatch.core.decode import Decoder
from plantwatch.core.decode.addr import ip_texts
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.pipeline.zeek.follow import ZeekFollower
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


def _head_and_rows(path: Path) -> tuple[str, list[str]]:
    lines = path.read_text().splitlines(keepends=True)
    head = "".join(ln for ln in lines if ln.startswith("#") and not ln.startswith("#close"))
    return head, [ln for ln in lines if not ln.startswith("#")]


def test_the_sensor_following_a_log_directory_reads_the_identity_logs(tmp_path: Path) -> None:
    """`sensor --zeek`: the identity logs are read as they are written (each line once, through the
    logger's rotation and a restart, also after their connection closed), give what `analyze
    --zeek` gives, and a revision stated in a later file raises the breach quoting both values and
    both log lines."""
    src = tmp_path / "src"
    _copy(ZEEK / "enip" / "cip_identity.log", src / "cip_identity.log", "1700000000.000000")
    _copy(ZEEK / "enip" / "conn.log", src / "conn.log", "1699999999.000000")
    _copy(ZEEK / "s7ident" / "s7comm_known_devices.log", src / "s7comm_known_devices.log", "1700000000.250000")
    cip_head, (cip_row,) = _head_and_rows(src / "cip_identity.log")
    later = cip_row.replace("1700000000.000000", "1700086400.000000").replace("\t4.3\t", "\t4.5\t")
    spool, store = tmp_path / "spool", tmp_path / "s.sqlite"
    spool.mkdir()
    cur = spool / "cip_identity.log"
    cur.write_text(cip_head + cip_row[:40])  # the logger is mid-line: nothing to read yet
    with Store(store) as st:
        f = ZeekFollower(st, spool)
        assert f.poll() == 0
        assert _stored(st) == {}
        with cur.open("a") as fh:
            fh.write(cip_row[40:])
        (spool / "conn.log").write_text((src / "conn.log").read_text())  # its connection closes
        assert f.poll() == 1 + len(_head_and_rows(src / "conn.log")[1])
        got = _stored(st)["10.1.1.164"]
        assert got["firmware"] == ("4.003", "enip") and got["product"] == ("1756-ENBT/A", "enip")
        (cid,), = st.execute("SELECT capture_id FROM captures WHERE path LIKE '%cip_identity.log'").fetchall()
        line = 1 + cip_head.count("\n")
        assert st.execute("SELECT DISTINCT first_ref FROM device_identity WHERE device = '10.1.1.164'"
                          ).fetchall() == [((cid << 32) | line,)]
        assert f.pending == {}  # not a connection's operation: never held for its connection
        # rotation; the new file states another revision on the connection that has closed
        cur.rename(spool / "cip_identity.2023-11-15-22-00-00.log")
        cur.write_text(cip_head + later)
        assert f.poll() == 1
        f.close()
    with Store(store) as st:  # a restart: nothing read again, the identity state comes back
        f = ZeekFollower(st, spool)
        assert f.poll() == 0
        (spool / "s7comm_known_devices.log").write_text((src / "s7comm_known_devices.log").read_text())
        assert f.poll() == 1
        f.close()
        rows = st.execute("SELECT device, details, refs FROM breaches WHERE model = 'ics.identity_changed'").fetchall()
        (new_cid,), = st.execute("SELECT capture_id FROM captures WHERE path LIKE '%/cip_identity.log'").fetchall()
        followed = _stored(st)
    (device, details, refs), = rows
    assert device == "10.1.1.164"
    assert [(c["attribute"], c["old"], c["new"]) for c in json.loads(details)["changes"]] == [
        ("firmware", "4.003", "4.005")]
    assert set(json.loads(refs)) == {(cid << 32) | line, (new_cid << 32) | line}
    assert followed["172.17.0.2"]["module"] == ("CPU 315-2 PN/DP", "s7comm")
    # the same identity analyze --zeek reads from the same lines in one go
    one = tmp_path / "one"
    for name in ("cip_identity.log", "conn.log", "s7comm_known_devices.log"):
        _copy(src / name, one / "a" / name, "")
    _copy(src / "cip_identity.log", one / "b" / "cip_identity.log", "", (cip_row, later))
    with Store(tmp_path / "a.sqlite") as st:
        Ingest(st).run_zeek([one])
        assert _stored(st) == followed
