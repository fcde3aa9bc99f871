"""SIEM output: breaches and incidents as RFC 5424 syslog with CEF or JSON bodies, received by a
real rsyslogd on loopback (UDP and TCP) from `analyze` and from `sensor`."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwatch.core.views.siem import cef_breach, syslog_message
from plantwatch.tui.cli import main
from tests.rsyslog_support import needs_rsyslog, rsyslog
from tests.sensor_support import ZONES_TOML, incident, write_ring
from tests.tui_support import DEMO, HOSTILE, needs_demo

ROOT = Path(__file__).resolve().parent.parent
_ID = re.compile(r'\bid="(\d+)"')


def _store_rows(store: Path) -> tuple[dict[int, tuple], dict[int, tuple]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        b = {r[0]: r[1:] for r in db.execute("SELECT breach_id, model, device, explanation, severity FROM breaches")}
        i = {r[0]: r[1:] for r in db.execute("SELECT incident_id, title, breaches FROM incidents")}
    return b, i


def _analyze_demo(store: Path, *syslog: str) -> str:
    r = CliRunner().invoke(main, ["analyze", "--store", str(store), "--zones", str(DEMO / "zones.toml"),
                                  "--learn", str(DEMO / "learn.pcapng.gz"), str(DEMO / "incident.pcapng.gz"),
                                  *syslog])
    assert r.exit_code == 0, r.output
    return r.output


def _breach(**over) -> dict:
    b = {"breach_id": 7, "model": "Unusual Admin RDP Session", "model_id": "rdp.admin", "category": "Network",
         "severity": "high", "phase": "privilege", "attack_ids": ["T0886", "T0859"], "device": "10.0.0.66",
         "devices": ["10.0.0.66", "10.0.0.5"], "first_seen": "2026-03-04T13:18:00.000000Z",
         "last_seen": "2026-03-04T13:28:59.000000Z", "score": 0.57, "importance": 3.2,
         "explanation": "opened RDP as 'x'", "evidence": {"sessions": [1], "packets": [{"capture_id": 1, "frame": 9}]},
         "details": {"user": "x"}, "incident_id": None}
    b.update(over)
    return b


def test_cef_escapes_wire_strings() -> None:
    cef = cef_breach(_breach(explanation=f"user {HOSTILE}=a\\b\nc|d", model="A|B"), "0.1.0")
    assert cef.startswith("CEF:0|plantwatch|plantwatch|0.1.0|rdp.admin|A\\|B|8|")
    msg = cef.split(" msg=", 1)[1]
    assert msg == "user [bold red]x[/]\\x1b[31mEVIL\\=a\\\\b\\nc|d"
    assert "\x1b" not in cef and "\n" not in cef


def test_rfc5424_header_uses_packet_time_and_bounds_the_size() -> None:
    m = syslog_message("breach", _breach(), "json", hostname="sensor 1\x1b", version="0.1.0").decode()
    assert m.startswith('<35>1 2026-03-04T13:18:00.000000Z sensor1 plantwatch - breach '
                        '[plantwatch@32473 id="7" model="rdp.admin" device="10.0.0.66" score="0.5700"] {')
    body = json.loads(m.split("] ", 1)[1])
    assert body["type"] == "breach" and body["explanation"] == "opened RDP as 'x'"
    big = _breach(explanation="y" * 20000, details={"k": "z" * 20000})
    for fmt in ("json", "cef"):
        assert len(syslog_message("breach", big, fmt, hostname="h", version="0.1.0")) <= 8000
    slim = json.loads(syslog_message("breach", big, "json", hostname="h", version="0.1.0").decode().split("] ", 1)[1])
    assert slim["truncated"] and slim["breach_id"] == 7


def test_bad_syslog_targets_fail_in_one_line(tmp_path: Path) -> None:
    for url, words in (("http://x:1", "udp://HOST:PORT"), ("udp://127.0.0.1:99999", "port"),
                       ("tcp://127.0.0.1:1", "cannot connect")):
        r = CliRunner().invoke(main, ["analyze", str(tmp_path / "none.pcap"), "--store", str(tmp_path / "s.sqlite"),
                                      "--syslog", url])
        assert r.exit_code == 2 and words in r.output and "Traceback" not in r.output, r.output
        assert not (tmp_path / "s.sqlite").exists()   # failed before the store was touched


@needs_demo
@needs_rsyslog
def test_analyze_sends_the_demo_breaches_over_udp_as_cef(tmp_path: Path, demo_store: Path) -> None:
    with rsyslog(tmp_path) as rs:
        out = _analyze_demo(tmp_path / "s.sqlite", "--syslog", f"udp://127.0.0.1:{rs.udp}")
        breaches, incidents = _store_rows(demo_store)
        recs = rs.wait_for(lambda r: len(r) >= len(breaches) + len(incidents))
    assert f"sent {len(breaches)} breach(es) and {len(incidents)} incident(s)" in out
    got_b = {int(_ID.search(r["structured-data"]).group(1)): r for r in recs if r["msgid"] == "breach"}
    got_i = {int(_ID.search(r["structured-data"]).group(1)): r for r in recs if r["msgid"] == "incident"}
    assert set(got_b) == set(breaches) and len(got_b) == len(recs) - len(got_i)   # each breach once
    assert set(got_i) == set(incidents)
    for bid, (model, device, _expl, severity) in breaches.items():
        r = got_b[bid]
        assert r["app-name"] == "plantwatch" and r["syslogfacility"] == "4"
        assert r["syslogseverity"] == {"critical": "2", "high": "3", "medium": "4", "low": "5"}[severity]
        assert r["msg"].startswith("CEF:0|plantwatch|plantwatch|") and f"|{model}|" in r["msg"]
        assert f"externalId={bid} " in r["msg"] and f"src={device} " in r["msg"]
    rdp = next(r for r in got_b.values() if "|rdp.admin|" in r["msg"])
    assert rdp["timereported"].startswith("2026-03-04T13:18")       # packet time, not the clock
    assert "Administrator" in rdp["msg"]


@needs_demo
@needs_rsyslog
@pytest.mark.slow
def test_analyze_sends_json_over_tcp_and_a_second_run_sends_nothing_again(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    with rsyslog(tmp_path) as rs:
        _analyze_demo(store, "--syslog", f"tcp://127.0.0.1:{rs.tcp}", "--syslog-format", "json")
        breaches, incidents = _store_rows(store)
        recs = rs.wait_for(lambda r: len(r) >= len(breaches) + len(incidents))
        r = CliRunner().invoke(main, ["analyze", "--store", str(store), str(DEMO / "incident.pcapng.gz"),
                                      "--syslog", f"tcp://127.0.0.1:{rs.tcp}", "--syslog-format", "json"])
        assert "sent 0 breach(es) and 0 incident(s)" in r.output
    bodies = [json.loads(x["msg"]) for x in recs]
    got = {b["breach_id"]: b for b in bodies if b["type"] == "breach"}
    assert set(got) == set(breaches)
    for bid, (model, device, expl, _sev) in breaches.items():
        assert (got[bid]["model_id"], got[bid]["device"], got[bid]["explanation"]) == (model, device, expl)
    inc = [b for b in bodies if b["type"] == "incident"]
    assert [i["incident_id"] for i in inc] == list(incidents)
    assert set(inc[0]["breach_ids"]) == set(breaches) and inc[0]["attack_ids"]


@needs_rsyslog
def test_sensor_sends_what_it_commits(tmp_path: Path) -> None:
    ring = tmp_path / "ring"
    write_ring(ring, incident(normal=400), 3)
    (tmp_path / "zones.toml").write_text(ZONES_TOML)
    store = tmp_path / "sensor" / "s.sqlite"
    with rsyslog(tmp_path) as rs:
        p = subprocess.run(
            [sys.executable, "-m", "plantwatch", "sensor", "--follow-only", "--exit-idle", "0.5",
             "--ring-dir", str(ring), "--store", str(store), "--zones", str(tmp_path / "zones.toml"),
             "--syslog", f"udp://127.0.0.1:{rs.udp}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        breaches, incidents = _store_rows(store)
        recs = rs.wait_for(lambda r: len({x["structured-data"] for x in r if x["msgid"] == "breach"}) >= len(breaches))
    assert breaches and "syslog udp://127.0.0.1" in p.stderr
    got = {int(_ID.search(r["structured-data"]).group(1)) for r in recs if r["msgid"] == "breach"}
    assert set(breaches) <= got
    assert any("|ics.reprogram|" in r["msg"] for r in recs)


@needs_rsyslog
def test_sensor_following_zeek_logs_sends_its_breaches(tmp_path: Path) -> None:
    from tests.zeek_support import ZEEK_DATA, unmask

    spool = unmask(ZEEK_DATA / "modbus", tmp_path / "spool")
    store = tmp_path / "z.sqlite"
    with rsyslog(tmp_path) as rs:
        res = CliRunner().invoke(main, ["sensor", "--zeek", str(spool), "--store", str(store), "--exit-idle", "0.1",
                                        "--syslog", f"tcp://127.0.0.1:{rs.tcp}"])
        assert res.exit_code == 0, res.output
        breaches, _ = _store_rows(store)
        recs = rs.wait_for(lambda r: len([x for x in r if x["msgid"] == "breach"]) >= len(breaches))
    assert breaches
    assert {int(_ID.search(r["structured-data"]).group(1)) for r in recs if r["msgid"] == "breach"} == set(breaches)
    assert any("|ics.new_action|" in r["msg"] for r in recs)


def test_a_target_that_goes_away_gets_the_queued_messages_when_it_is_back() -> None:
    """TCP: the listener closes, messages queue (not lost, not blocking per message); a listener on
    the same port takes them, in order, at the next flush."""
    import socket

    from plantwatch.core.pipeline.siem import SyslogSender, SyslogTarget

    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    sender = SyslogSender(SyslogTarget.parse(f"tcp://127.0.0.1:{port}"), timeout=2.0, backoff_s=3600)
    sender.check()
    conn, _ = srv.accept()
    sender.send(b"<36>1 - h plantwatch - breach - one")
    assert conn.recv(100) == b"35 <36>1 - h plantwatch - breach - one"
    conn.close()
    srv.close()
    for i in range(5):    # the first write may still land in the dead socket's buffer; then refused
        sender.send(b"<36>1 - h plantwatch - breach - m%d" % i)
    assert sender.pending >= 4 and sender.sent >= 1
    assert not sender.flush()                 # backing off: not even tried
    srv = socket.create_server(("127.0.0.1", port))
    try:
        assert sender.flush(force=True) and sender.pending == 0
        conn, _ = srv.accept()
        conn.settimeout(5)
        got = b""
        while got.count(b" m") < 4 or not got.endswith(b"m4"):
            got += conn.recv(4096)
        assert got.endswith(b"<36>1 - h plantwatch - breach - m4")
        conn.close()
    finally:
        srv.close()
        sender.close()
