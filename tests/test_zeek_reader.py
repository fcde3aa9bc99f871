"""Reading Zeek logs: TSV with a header, header-less ICSNPP logs, JSON lines, gzip; bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.pipeline.zeek.build import build
from plantwatch.core.pipeline.zeek.reader import ZeekLogError, read_log, unescape
from tests.zeek_support import ZEEK_DATA, tuples, zeek_sessions


def test_tsv_with_header() -> None:
    log = read_log(ZEEK_DATA / "modbus" / "conn.log")
    assert log.name == "conn" and log.height == 2
    assert log.frame["_line"].to_list() == [10, 11]          # line numbers in the file: the evidence
    assert log.frame["tunnel_parents"].to_list() == [None, None]  # '-' is unset
    assert log.frame["history"].to_list() == ["ShADadFf", "Dd"]


def test_headerless_icsnpp_logs_use_the_documented_field_order() -> None:
    cip = read_log(ZEEK_DATA / "enip" / "cip.log")
    assert cip.height == 1158
    assert cip.frame.row(0, named=True)["cip_service"] == "Multiple Service Packet"
    assert cip.frame.row(0, named=True)["class_name"] == "Message Router"
    ident = read_log(ZEEK_DATA / "enip" / "cip_identity.log")
    assert ident.frame.row(0, named=True)["product_name"] == "1756-ENBT/A"
    assert read_log(ZEEK_DATA / "modbus" / "modbus.log").frame.columns[6:8] == ["func", "exception"]


def _as_json_lines(src: Path, dst: Path) -> None:
    """What Zeek writes with LogAscii::use_json=T: one object per record, typed values, no
    unset fields, sets as arrays."""
    log = read_log(src)
    types = dict(zip(log.header.fields or [], [""] * 99, strict=False))
    for line in src.read_text().splitlines():
        if line.startswith("#types"):
            types = dict(zip(log.header.fields or [], line.split("\t")[1:], strict=True))
    with dst.open("w") as fh:
        for row in log.frame.drop("_line", "_key").iter_rows(named=True):
            rec: dict = {}
            for k, v in row.items():
                if v is None:
                    continue
                t = types.get(k, "")
                if t in ("count", "port", "int"):
                    rec[k] = int(v)
                elif t in ("interval", "double"):
                    rec[k] = float(v)
                elif t == "time":
                    rec[k] = float(v) if v[0].isdigit() else v
                elif t == "bool":
                    rec[k] = v == "T"
                elif t.startswith(("set", "vector")):
                    rec[k] = v.split(",") if v else []
                else:
                    rec[k] = v
            fh.write(json.dumps(rec) + "\n")


def test_json_lines_and_gzip_give_the_same_sessions(tmp_path: Path) -> None:
    src = ZEEK_DATA / "dnp3"
    (tmp_path / "j").mkdir()
    (tmp_path / "g").mkdir()
    for p in src.glob("*.log"):
        _as_json_lines(p, tmp_path / "j" / p.name)
        (tmp_path / "g" / (p.name + ".gz")).write_bytes(gzip.compress(p.read_bytes()))
    assert read_log(tmp_path / "j" / "conn.log").header.json
    tsv = zeek_sessions(src)
    js = zeek_sessions(tmp_path / "j")
    gz = build([(read_log(p), i + 1) for i, p in enumerate(sorted((tmp_path / "g").glob("*.gz")))])
    assert tuples(js) == tuples(tsv) == tuples(pl.concat([gz.ended, gz.open]))
    assert js["n_ops"].sum() == tsv["n_ops"].sum() == pl.concat([gz.ended, gz.open])["n_ops"].sum() > 700


def test_dns_and_dhcp_become_names() -> None:
    logs = [(read_log(ZEEK_DATA / n / f"{k}.log"), 1) for n, k in (("zeek_dns", "dns"), ("zeek_dhcp", "dhcp"))]
    names = build(logs).names
    dns = names.filter(pl.col("dns_qname").is_not_null()).row(0, named=True)
    assert dns["dns_qname"] == "us.v27.distributed.net" and dns["dns_answers"].count(",") == 7
    dhcp = names.filter(pl.col("dhcp_hostname").is_not_null())
    assert set(dhcp["dhcp_hostname"]) == {"btest.is.cool"} and set(dhcp["dhcp_req_ip"]) == {"128.2.6.189"}
    assert dhcp["dhcp_chaddr"][0] == 0x90B11C994929
    assert names["ip_ver"].null_count() == names.height  # names only: no traffic is counted


def test_rotated_names_keep_the_log_name(tmp_path: Path) -> None:
    p = tmp_path / "conn.2026-12-04-10-00-00.log.gz"
    text = (ZEEK_DATA / "modbus" / "conn.log").read_bytes().replace(b"#path\tconn\n", b"")
    p.write_bytes(gzip.compress(text))
    assert read_log(p).name == "conn"


@pytest.mark.parametrize(("content", "problem"), [
    ("#separator \\x09\n#fields\tts\tuid\n1.0\tCabc\textra\n", "line 3: 3 fields, the header has 2"),
    ('{"ts": 1.0, "uid": "C1"}\n{"ts": 2.0,\n', "line 2: not JSON"),
    ("1.0\tCabc\t10.0.0.1\n", "no #fields header, and 3 columns match no known layout"),
])
def test_bad_logs_name_the_file_and_the_line(tmp_path: Path, content: str, problem: str) -> None:
    p = tmp_path / "conn.log"
    p.write_text(content)
    with pytest.raises(ZeekLogError) as e:
        read_log(p)
    assert str(e.value).startswith(str(p) + ": ")
    assert problem in str(e.value)


def test_truncated_gzip(tmp_path: Path) -> None:
    p = tmp_path / "conn.log.gz"
    p.write_bytes(gzip.compress((ZEEK_DATA / "modbus" / "conn.log").read_bytes())[:60])
    with pytest.raises(ZeekLogError, match="conn.log.gz: cannot read"):
        read_log(p)


def test_unescape() -> None:
    assert unescape("FTBCO\\\\A70") == "FTBCO\\A70"
    assert unescape("a\\x09b\\x1b[31m") == "a\tb\x1b[31m"   # control chars come back; views escape them
    assert unescape(None) is None and unescape("plain") == "plain"


def test_open_conn_sessions_stay_open_until_conn_log(tmp_path: Path) -> None:
    """open_conn.log has conn.log's layout for connections not closed yet: their sessions are
    open (a connection that never got an answer is still "attempted"); a conn.log line wins."""
    text = (ZEEK_DATA / "dnp3" / "conn.log").read_text().replace("#path\tconn", "#path\topen_conn")
    (tmp_path / "open_conn.log").write_text(text)
    for p in (ZEEK_DATA / "dnp3").glob("dnp3*.log"):
        (tmp_path / p.name).write_text(p.read_text())
    logs = [(read_log(p), i + 1) for i, p in enumerate(sorted(tmp_path.glob("*.log")))]
    b = build(logs)
    assert b.ended.height == 0 and b.open.height == 11
    assert tuples(b.open) == tuples(zeek_sessions(ZEEK_DATA / "dnp3"))
    assert b.open["n_ops"].sum() == zeek_sessions(ZEEK_DATA / "dnp3")["n_ops"].sum()
    both = build(logs + [(read_log(ZEEK_DATA / "dnp3" / "conn.log"), 9)])
    assert both.ended.height == 11 and both.open.height == 0
