"""core/views/queries.py (the console's read API), core/capture/replay.py and core/views/dissect.py, and the engine's
per-batch mode the live console uses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from plantwatch.core.capture.files import read_batches
from plantwatch.core.capture.replay import NS, Replay
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.views import queries
from plantwatch.core.views.dissect import DissectError, dissect
from plantwatch.core.views.queries import FilterError, parse_conn_filter, parse_device_filter
from tests.tui_support import ATTACKER, DEMO, needs_demo

REAL = Path(__file__).resolve().parent / "data" / "real"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


# --------------------------------------------------------------------------- filters

def test_device_filter_parsing() -> None:
    f = parse_device_filter("zone:ot role:plc score:>0.5 port:102 new:yes vendor:Siemens 10.20")
    assert (f.zone, f.role, f.score_op, f.score, f.port, f.new, f.vendor, f.text) == \
        ("ot", "plc", ">", 0.5, 102, True, "siemens", ("10.20",))
    assert parse_device_filter("score:0.3").score_op == ">="
    assert parse_device_filter("").empty
    for bad in ("port:99999", "score:high", "new:maybe", "colour:red"):
        with pytest.raises(FilterError):
            parse_device_filter(bad)


def test_conn_filter_parsing() -> None:
    ref = 1772629920 * NS   # 2026-03-04 13:12:00 UTC
    f = parse_conn_filter('device:10.10.10.157 port:102 proto:s7comm state:failed model:"Admin RDP" '
                          "since:13:00 until:2026-03-04T14:30", ref)
    assert (f.device, f.port, f.proto, f.state, f.model) == ("10.10.10.157", 102, "s7comm", "failed", "Admin RDP")
    assert f.since == (1772629920 - 12 * 60) * NS
    assert f.until == (1772629920 + 78 * 60) * NS
    assert "port:102" in f.describe()
    for bad in ("proto:gopher", "since:noon", "x:1", "state:weird", "model:nonsense"):
        with pytest.raises(FilterError):
            parse_conn_filter(bad, ref)


# --------------------------------------------------------------------------- the demo store

@needs_demo
def test_unknown_device_is_an_error_once_the_store_is_asked(demo_store: Path) -> None:
    """A device may be given by name, so `device:not-an-ip` parses; the store has no such device."""
    with Store(demo_store, readonly=True) as st, pytest.raises(FilterError):
        queries.connections(st, parse_conn_filter("device:not-an-ip"))


@pytest.fixture(scope="module")
def store(demo_store: Path) -> Store:
    s = Store(demo_store, readonly=True)
    yield s
    s.close()


@needs_demo
def test_status_and_devices(store: Store) -> None:
    st = queries.status(store)
    assert st.devices == store.execute("SELECT COUNT(*) FROM devices").fetchone()[0] > 30
    assert st.detection and st.breaches > 0 and st.incidents >= 1
    assert st.learn_end is not None and st.first_ts < st.learn_end < st.last_ts
    dl = queries.device_list(store)
    assert dl.total == st.devices == len(dl.rows)
    assert dl.rows[0].ip == ATTACKER and dl.rows[0].score and dl.rows[0].new
    ot = queries.device_list(store, parse_device_filter("zone:ot"))
    assert ot.rows and all(r.zone_kind == "ot" for r in ot.rows)
    plcs = queries.device_list(store, parse_device_filter("role:plc zone:Industrial"))
    assert {r.ip for r in plcs.rows} >= {"10.20.20.21", "10.20.20.22"}
    new = queries.device_list(store, parse_device_filter("new:yes"))
    assert ATTACKER in {r.ip for r in new.rows}
    assert all(r.first_ts > st.learn_end for r in new.rows)
    hot = queries.device_list(store, parse_device_filter("score:>0.5"))
    assert hot.rows and all(r.score > 0.5 for r in hot.rows)


@needs_demo
@needs_tshark
@pytest.mark.tshark
def test_port_filter_against_tshark(store: Store) -> None:
    """Devices on port 102 and the attacker's port-102 connections, checked against tshark."""
    out = subprocess.run(
        ["tshark", "-r", str(DEMO / "incident.pcapng.gz"), "-Y",
         f"ip.src=={ATTACKER} && tcp.dstport==102 && tcp.flags.syn==1 && tcp.flags.ack==0",
         "-T", "fields", "-e", "ip.dst", "-e", "tcp.srcport"],
        capture_output=True, text=True, check=True).stdout.split("\n")
    conns = {tuple(line.split("\t")) for line in out if line}
    got = queries.connections(store, parse_conn_filter(f"device:{ATTACKER} port:102"), limit=10_000)
    assert got.total == len(got.rows) == len(conns)
    assert {(r.server, str(r.client_port)) for r in got.rows} == conns
    assert all(r.server_port == 102 and r.client == ATTACKER for r in got.rows)
    on_102 = {r.ip for r in queries.device_list(store, parse_device_filter("port:102")).rows}
    devices = {r[0] for r in store.execute("SELECT ip FROM devices")}
    answered = {dst for dst, _ in conns} & devices      # scanned addresses that never sent are no devices
    assert answered and {ATTACKER} | answered <= on_102


@needs_demo
def test_device_detail_and_connections(store: Store) -> None:
    d = queries.device_detail(store, ATTACKER)
    fields = dict(d.fields)
    assert "DESKTOP-4H7KQ2P" in fields["name"] and fields["address"] == ATTACKER
    assert d.learning in ("new", "learning")
    assert any(p.port == 102 and p.direction == "out" for p in d.peers)
    classes = {o.cls for o in d.ops if o.direction == "sent"}
    assert {"DISCOVER", "ACTION", "REPROGRAM"} <= classes
    assert d.breaches and all(ATTACKER in (b.device, *b.devices) for b in d.breaches)
    titles = [c.title for c in d.charts]
    assert "connections started" in titles and "failed external connections" in titles
    assert sum(d.charts[0].values) == d.connections.total
    assert d.connections.rows[0].first_ts >= d.connections.rows[-1].first_ts
    assert queries.device_detail(store, "192.0.2.254") is None
    failed = queries.connections(store, parse_conn_filter(f"device:{ATTACKER} state:failed"), limit=5)
    assert failed.total > 5 and len(failed.rows) == 5
    assert all(r.state in ("refused", "unanswered", "unreachable") for r in failed.rows)


@needs_demo
def test_breaches_and_incident(store: Store) -> None:
    b = queries.breaches(store)
    assert b.detection and b.total == len(b.rows) > 0
    assert [r.first_ts for r in b.rows] == sorted((r.first_ts for r in b.rows), reverse=True)
    assert all(0 <= r.score <= 1 and r.explanation for r in b.rows)
    rdp = queries.breaches(store, model="rdp")
    assert rdp.rows and all("RDP" in r.model for r in rdp.rows)
    ev = queries.connections(store, parse_conn_filter(f'model:"{rdp.rows[0].model}"'))
    assert ev.total >= 1 and {r.session_id for r in ev.rows} <= set().union(*(r.session_ids for r in rdp.rows))
    inc = queries.incidents(store)
    assert inc.rows and inc.rows[0].device == ATTACKER
    top = inc.rows[0]
    assert top.phases and top.attack_ids and top.narrative
    detail = queries.incident_detail(store, top.incident_id)
    assert detail.breaches and all(x.incident_id == top.incident_id for x in detail.breaches)
    assert any("Scanning" in title for title, _ in detail.summaries)
    assert queries.incident_detail(store, 12345) is None


def test_empty_store_is_honest(empty_store: Path) -> None:
    with Store(empty_store, readonly=True) as s:
        st = queries.status(s)
        assert (st.devices, st.sessions, st.breaches, st.detection) == (0, 0, 0, False)
        assert queries.device_list(s).rows == ()
        assert not queries.breaches(s).detection and not queries.incidents(s).detection
        assert queries.activity(s) == {}


# --------------------------------------------------------------------------- engine per batch

def test_per_batch_commit_matches_one_run(tmp_path: Path) -> None:
    cap = REAL / "s7comm_snap7.pcap"
    one, many = tmp_path / "one.sqlite", tmp_path / "many.sqlite"
    with Store(one) as s:
        Ingest(s).run([cap])
    seen = []
    with Store(many) as s:
        Ingest(s).run([cap], commit="batch", chunk_packets=7, on_batch=seen.append)
    assert len(seen) > 3 and sum(b.packets for b in seen) == int(np.sum([b.packets for b in seen]))
    assert [b.first_ts for b in seen] == sorted(b.first_ts for b in seen)
    q = "SELECT session_id, state, pkts_c2s, pkts_s2c, bytes_c2s FROM sessions ORDER BY session_id"
    with Store(one, readonly=True) as a, Store(many, readonly=True) as b:
        assert a.execute(q).fetchall() == b.execute(q).fetchall()
        dq = "SELECT device, role, pkts_sent, sessions_client FROM devices ORDER BY device"
        assert a.execute(dq).fetchall() == b.execute(dq).fetchall()


# --------------------------------------------------------------------------- replay

class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept = 0.0

    def sleep(self, s: float) -> None:
        self.t += s
        self.slept += s

    def now(self) -> float:
        return self.t


def test_replay_paces_on_packet_time() -> None:
    batches = list(read_batches([REAL / "s7comm_snap7.pcap"], chunk_packets=50))
    ts = np.concatenate([b.ts for b in batches])
    clock = FakeClock()
    rp = Replay(speed=10.0, tick_s=0.1, sleep=clock.sleep, monotonic=clock.now)
    out = list(rp(iter(batches)))
    got = np.concatenate([b.ts for b in out])
    assert np.array_equal(got, ts)                                   # every record, in order
    for b in out:                                                    # each slice spans <= 1 s of packet time
        assert b.ts[-1] - b.ts[0] < int(10.0 * 0.1 * NS)
    span_s = (ts[-1] - ts[0]) / NS
    assert clock.slept == pytest.approx(span_s / 10.0, rel=0.05, abs=0.2)
    assert rp.packet_clock == int(ts[-1])


def test_replay_finish_and_speed() -> None:
    batches = list(read_batches([REAL / "s7comm_snap7.pcap"], chunk_packets=50))
    clock = FakeClock()
    rp = Replay(speed=1.0, tick_s=0.1, sleep=clock.sleep, monotonic=clock.now)
    it = rp(iter(batches))
    first = next(it)
    rp.faster()
    assert rp.speed == 2.0
    rp.slower()
    rp.slower()
    assert rp.speed == 1.0                                           # bounded below
    rp.finish()
    rest = list(it)
    assert sum(len(b) for b in rest) + len(first) == sum(len(b) for b in batches)
    assert len(rest) <= len(batches)                                 # no more slicing once finishing


# --------------------------------------------------------------------------- dissect

@needs_tshark
@pytest.mark.tshark
def test_dissect_one_packet() -> None:
    d = dissect(REAL / "s7comm_snap7.pcap", 5)
    names = [n.label for n in d.layers]
    assert names[:3] == ["Ethernet II", "Internet Protocol Version 4", "Transmission Control Protocol"]
    assert "S7COMM" in names
    tcp = d.layers[2]
    assert any(c.label == "Destination Port: 102" for c in tcp.children)
    with pytest.raises(DissectError, match="frame 99999 is not in"):
        dissect(REAL / "s7comm_snap7.pcap", 99999)


def test_dissect_problems_are_plain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DissectError, match="is gone"):
        dissect(tmp_path / "nope.pcap", 1)
    import plantwatch.core.views.dissect

    monkeypatch.setattr(plantwatch.core.views.dissect, "tshark_path", lambda: None)
    with pytest.raises(DissectError, match="tshark is not installed"):
        dissect(REAL / "s7comm_snap7.pcap", 1)
