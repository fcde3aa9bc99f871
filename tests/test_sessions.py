"""Sessions: state machine, batching, ids, ops, and differential checks against tshark."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.decode.addr import ip_to_text, text_to_ip, text_to_mac
from plantwatch.core.decode.schema import (
    APP_MODBUS,
    APP_S7,
    CLS_READ,
    DIR_REQUEST,
    DIR_RESPONSE,
    OPS,
    PACKETS,
)
from plantwatch.core.flows.sessions import (
    SESSIONS,
    SessionTracker,
    ref_file,
    ref_frame,
    session_ops,
)
from plantwatch.core.store import state as pipeline_state
from plantwatch.core.synth import frames as F
from plantwatch.core.synth.pcapwriter import write_pcap

REAL = Path(__file__).parent / "data" / "real"
SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08
S = 1_000_000_000
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


# --- tiny builders of PACKETS / OPS frames (also used by tests/test_devices.py) ----------------

def pkt(ts: float, src: str, dst: str, sport: int | None = None, dport: int | None = None, *,
        proto: int = 6, flags: int = ACK, seq: int = 1000, pay: int = 0, frame: int = 0,
        file_id: int = 0, smac: str | None = None, dmac: str | None = None, **extra: object) -> dict:
    """One PACKETS row with defaults; extra keys set any other column."""
    sh, sl = text_to_ip(src)
    dh, dl = text_to_ip(dst)
    r: dict[str, object] = {
        "file_id": file_id, "frame": frame, "ts": int(round(ts * S)), "caplen": 60 + pay,
        "wirelen": 60 + pay, "linktype": 1, "ethertype": 0x0800 if sh == 0 else 0x86DD,
        "ip_ver": 4 if sh == 0 else 6, "src_hi": sh, "src_lo": sl, "dst_hi": dh, "dst_lo": dl,
        "ip_proto": proto, "ttl": 64, "ip_frag": False, "pay_len": pay, "app": 0,
        "eth_src": text_to_mac(smac) if smac else None, "eth_dst": text_to_mac(dmac) if dmac else None,
    }
    if proto in (6, 17):
        r["sport"], r["dport"] = sport, dport
    if proto == 6:
        r.update(tcp_flags=flags, seq=seq, ack=0, win=1024)
    r.update(extra)
    return r


def frame_of(rows: list[dict]) -> pl.DataFrame:
    """A PACKETS frame; frames are numbered 1.. in list order unless given."""
    for i, r in enumerate(rows, 1):
        if not r.get("frame"):
            r["frame"] = i
    if not rows:
        return pl.DataFrame(schema=PACKETS)
    return pl.DataFrame([{k: r.get(k) for k in PACKETS} for r in rows], schema=PACKETS, orient="row")


def ops_of(rows: list[dict]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=OPS)
    return pl.DataFrame([{k: r.get(k) for k in OPS} for r in rows], schema=OPS, orient="row")


def run(batches: list[pl.DataFrame], ops: pl.DataFrame | None = None, **kw: float) -> pl.DataFrame:
    """Every session of the batches, ended or flushed."""
    t = SessionTracker(**kw)
    out = [t.update(b, ops) for b in batches]
    out.append(t.flush())
    return pl.concat(out)


def handshake(t0: float, c: str, s: str, cp: int, sp: int, *, isn: int = 100, data: bool = True,
              cmac: str = "00:0c:29:00:00:01", smac: str = "00:1b:1b:00:00:02",
              **kw: object) -> list[dict]:
    rows = [
        pkt(t0, c, s, cp, sp, flags=SYN, seq=isn, smac=cmac, **kw),
        pkt(t0 + 0.001, s, c, sp, cp, flags=SYN | ACK, seq=9000, smac=smac, **kw),
        pkt(t0 + 0.002, c, s, cp, sp, flags=ACK, seq=isn + 1, smac=cmac, **kw),
    ]
    if data:
        rows += [pkt(t0 + 0.003, c, s, cp, sp, flags=PSH | ACK, seq=isn + 1, pay=12, smac=cmac, **kw),
                 pkt(t0 + 0.004, s, c, sp, cp, flags=PSH | ACK, seq=9001, pay=40, smac=smac, **kw)]
    return rows


def one(df: pl.DataFrame, **match: object) -> dict:
    for k, v in match.items():
        df = df.filter(pl.col(k) == v)
    assert df.height == 1, df
    return df.row(0, named=True)


# --- TCP states ----------------------------------------------------------------------------

def test_handshake_established_fields() -> None:
    rows = handshake(10.0, "10.0.0.1", "10.0.0.2", 40000, 502, vlan=20)
    s = run([frame_of(rows)])
    assert s.schema == pl.Schema(SESSIONS)
    r = one(s)
    assert r["state"] == "established" and r["handshake"] and not r["midstream"]
    assert ip_to_text(r["client_hi"], r["client_lo"]) == "10.0.0.1" and r["client_port"] == 40000
    assert ip_to_text(r["server_hi"], r["server_lo"]) == "10.0.0.2" and r["server_port"] == 502
    assert (r["pkts_c2s"], r["pkts_s2c"]) == (3, 2)
    assert (r["bytes_c2s"], r["bytes_s2c"]) == (60 * 3 + 12, 60 * 2 + 40)
    assert (r["payload_c2s"], r["payload_s2c"]) == (12, 40)
    assert r["client_mac"] == text_to_mac("00:0c:29:00:00:01")
    assert r["server_mac"] == text_to_mac("00:1b:1b:00:00:02")
    assert r["vlan"] == 20 and r["syn_count"] == 1
    assert (r["first_frame"], r["last_frame"]) == (1, 5)
    assert ref_frame(r["ev_syn"]) == 1 and ref_frame(r["ev_synack"]) == 2 and r["ev_rst"] is None
    assert r["first_ts"] == 10 * S and r["last_ts"] == int(10.004 * S)


def test_refused_by_rst() -> None:
    rows = [pkt(1.0, "10.0.0.1", "10.0.0.3", 40001, 102, flags=SYN, seq=5),
            pkt(1.001, "10.0.0.3", "10.0.0.1", 102, 40001, flags=RST | ACK, seq=0)]
    r = one(run([frame_of(rows)]))
    assert r["state"] == "refused" and r["rst_server"] == 1 and ref_frame(r["ev_rst"]) == 2
    assert r["server_port"] == 102


def test_unanswered_after_timeout_by_packet_time() -> None:
    t = SessionTracker(tcp_unanswered_s=5.0)
    syn = frame_of([pkt(0.0, "10.0.0.1", "10.0.0.9", 40002, 80, flags=SYN, seq=7)])
    assert t.update(syn, None).height == 0
    live = t.open_sessions()
    assert live["state"].to_list() == ["attempted"]
    # 4 s later (packet time) it is still waiting; 6 s later it is unanswered
    other = [pkt(4.0, "10.0.0.5", "10.0.0.6", 40000, 2000, proto=17, frame=2)]
    assert t.update(frame_of(other), None).height == 0
    later = [pkt(6.0, "10.0.0.5", "10.0.0.6", 40000, 2000, proto=17, frame=3)]
    ended = t.update(frame_of(later), None)
    r = one(ended)
    assert r["state"] == "unanswered" and r["server_port"] == 80 and r["pkts_s2c"] == 0
    assert t.open_sessions()["server_port"].to_list() == [2000]


def test_syn_retries_are_one_session() -> None:
    rows = [pkt(t, "10.0.0.1", "10.0.0.4", 40003, 80, flags=SYN, seq=5) for t in (0.0, 1.0, 3.0)]
    rows.append(pkt(20.0, "10.0.0.7", "10.0.0.8", 1, 2, proto=17))  # moves packet time on
    s = run([frame_of(rows)])
    r = one(s, proto=6)
    assert r["syn_count"] == 3 and r["state"] == "unanswered" and r["pkts_c2s"] == 3


def test_syn_retries_after_rst_stay_refused() -> None:
    # Windows retries a refused connect with the same ISN: still one refused session
    rows = []
    for t in (0.0, 0.5, 1.0):
        rows += [pkt(t, "10.0.0.1", "10.0.0.3", 40009, 502, flags=SYN, seq=77),
                 pkt(t + 0.001, "10.0.0.3", "10.0.0.1", 502, 40009, flags=RST | ACK, seq=0)]
    r = one(run([frame_of(rows)]))
    assert r["state"] == "refused" and r["syn_count"] == 3 and r["rst_server"] == 3


def test_reset_mid_stream() -> None:
    rows = handshake(0.0, "10.0.0.1", "10.0.0.2", 40010, 443)
    rows.append(pkt(0.5, "10.0.0.2", "10.0.0.1", 443, 40010, flags=RST | ACK, seq=9041))
    r = one(run([frame_of(rows)]))
    assert r["state"] == "reset" and r["rst_server"] == 1 and ref_frame(r["ev_rst"]) == 6


def test_fin_close() -> None:
    rows = handshake(0.0, "10.0.0.1", "10.0.0.2", 40011, 80)
    rows += [pkt(0.1, "10.0.0.1", "10.0.0.2", 40011, 80, flags=FIN | ACK, seq=113),
             pkt(0.2, "10.0.0.2", "10.0.0.1", 80, 40011, flags=FIN | ACK, seq=9041),
             pkt(0.3, "10.0.0.1", "10.0.0.2", 40011, 80, flags=ACK, seq=114)]
    r = one(run([frame_of(rows)]))
    assert r["state"] == "closed" and r["pkts_c2s"] == 5 and ref_frame(r["ev_fin"]) == 6


def test_fin_one_way_is_not_closed() -> None:
    rows = handshake(0.0, "10.0.0.1", "10.0.0.2", 40012, 80)
    rows.append(pkt(0.1, "10.0.0.1", "10.0.0.2", 40012, 80, flags=FIN | ACK, seq=113))
    assert one(run([frame_of(rows)]))["state"] == "established"


def test_port_reuse_makes_new_session() -> None:
    rows = handshake(0.0, "10.0.0.1", "10.0.0.2", 40013, 502, isn=100)
    rows += [pkt(0.1, "10.0.0.1", "10.0.0.2", 40013, 502, flags=FIN | ACK, seq=113),
             pkt(0.2, "10.0.0.2", "10.0.0.1", 502, 40013, flags=FIN | ACK, seq=9041)]
    rows += handshake(0.5, "10.0.0.1", "10.0.0.2", 40013, 502, isn=5000)   # same 5-tuple, new ISN
    s = run([frame_of(rows)]).sort("first_ts")
    assert s.height == 2
    assert s["state"].to_list() == ["closed", "established"]
    assert s["first_frame"].to_list() == [1, 8] and s["session_id"].n_unique() == 2


def test_reset_then_new_syn_same_tuple() -> None:
    rows = handshake(0.0, "10.0.0.1", "10.0.0.2", 40014, 102, isn=1)
    rows.append(pkt(0.1, "10.0.0.1", "10.0.0.2", 40014, 102, flags=RST, seq=13))
    rows += handshake(0.2, "10.0.0.1", "10.0.0.2", 40014, 102, isn=999)
    s = run([frame_of(rows)]).sort("first_ts")
    assert s["state"].to_list() == ["reset", "established"]


def test_midstream_both_ways_is_established() -> None:
    rows = [pkt(0.0, "10.0.0.2", "10.0.0.1", 502, 50000, flags=PSH | ACK, pay=9),
            pkt(0.1, "10.0.0.1", "10.0.0.2", 50000, 502, flags=PSH | ACK, pay=12)]
    r = one(run([frame_of(rows)]))
    assert r["state"] == "established" and r["midstream"]
    # the side on the ICS port is the server even though it spoke first
    assert r["server_port"] == 502 and ip_to_text(r["server_hi"], r["server_lo"]) == "10.0.0.2"


def test_session_split_across_batches_is_one_session() -> None:
    rows = handshake(0.0, "10.0.0.1", "10.0.0.2", 40015, 502)
    rows += [pkt(0.01 * i, "10.0.0.1", "10.0.0.2", 40015, 502, flags=PSH | ACK, pay=12)
             for i in range(1, 8)]
    rows += [pkt(0.2, "10.0.0.1", "10.0.0.2", 40015, 502, flags=FIN | ACK, seq=113),
             pkt(0.3, "10.0.0.2", "10.0.0.1", 502, 40015, flags=FIN | ACK, seq=9041)]
    rows.sort(key=lambda r: r["ts"])
    whole = frame_of(rows)
    a = run([whole])
    for cut in (1, 2, 3, 6, 11):
        b = run([whole.slice(0, cut), whole.slice(cut)])
        assert b.height == 1
        assert b.drop("ops").to_dicts() == a.drop("ops").to_dicts()
    # and one packet per batch
    c = run([whole.slice(i, 1) for i in range(whole.height)])
    assert c.drop("ops").to_dicts() == a.drop("ops").to_dicts()


def test_session_spanning_two_files_is_one_session() -> None:
    rows = handshake(0.0, "10.0.0.1", "10.0.0.2", 40016, 102, data=False)
    rows += [pkt(0.5, "10.0.0.1", "10.0.0.2", 40016, 102, flags=PSH | ACK, pay=10, file_id=1, frame=1),
             pkt(0.6, "10.0.0.2", "10.0.0.1", 102, 40016, flags=PSH | ACK, pay=10, file_id=1, frame=2)]
    r = one(run([frame_of(rows[:3]), frame_of(rows[3:])]))
    assert (r["first_file"], r["first_frame"], r["last_file"], r["last_frame"]) == (0, 1, 1, 2)


def test_ids_are_deterministic_and_distinct() -> None:
    rows = handshake(0.0, "10.0.0.1", "10.0.0.2", 40017, 502)
    rows += handshake(0.0, "10.0.0.1", "10.0.0.3", 40017, 502)
    a = run([frame_of([dict(r) for r in rows])]).sort("session_id")
    b = run([frame_of([dict(r) for r in rows])]).sort("session_id")
    assert a["session_id"].to_list() == b["session_id"].to_list()
    assert a["session_id"].n_unique() == 2 and (a["session_id"] >= 0).all()


def test_idle_gap_splits_tcp_midstream() -> None:
    rows = [pkt(0.0, "10.0.0.1", "10.0.0.2", 50000, 502, flags=PSH | ACK, pay=12),
            pkt(0.1, "10.0.0.2", "10.0.0.1", 502, 50000, flags=PSH | ACK, pay=9),
            pkt(100.0, "10.0.0.1", "10.0.0.2", 50000, 502, flags=PSH | ACK, pay=12)]
    assert run([frame_of(rows)], tcp_idle_s=60.0).height == 2
    assert run([frame_of(rows)], tcp_idle_s=300.0).height == 1


# --- UDP / ICMP -----------------------------------------------------------------------------

def test_udp_answered_and_unanswered() -> None:
    rows = [pkt(0.0, "10.0.0.1", "10.0.0.53", 5353, 53, proto=17, pay=30),
            pkt(0.1, "10.0.0.53", "10.0.0.1", 53, 5353, proto=17, pay=60),
            pkt(0.2, "10.0.0.1", "10.0.0.9", 5000, 161, proto=17, pay=30),
            pkt(0.3, "10.0.0.1", "10.0.0.9", 5000, 161, proto=17, pay=30)]
    s = run([frame_of(rows)])
    assert one(s, server_port=53)["state"] == "answered"
    r = one(s, server_port=161)
    assert r["state"] == "unanswered" and r["pkts_c2s"] == 2


def test_udp_where_no_answer_is_expected_is_one_way_not_failed() -> None:
    rows = [pkt(0.0, "10.0.0.1", "10.0.0.255", 137, 137, proto=17, pay=50),      # NBNS broadcast
            pkt(0.1, "10.0.0.7", "10.0.0.1", 137, 137, proto=17, pay=62),        # its unicast answer
            pkt(0.2, "0.0.0.0", "255.255.255.255", 68, 67, proto=17, pay=300),   # DHCP discover
            pkt(0.3, "10.0.0.1", "10.0.0.2", 5000, 514, proto=17, pay=80),       # syslog
            pkt(0.4, "10.0.0.1", "10.0.0.9", 5000, 20000, proto=17, pay=20)]     # DNP3 probe: no answer
    s = run([frame_of(rows)])
    states = {(r["server_port"], r["server_lo"] & 0xFF): r["state"] for r in s.iter_rows(named=True)}
    assert set(states.values()) - {"one-way"} == {"unanswered"}
    assert one(s, server_port=20000)["state"] == "unanswered"
    assert one(s, server_port=514)["state"] == "one-way"
    assert one(s, server_port=67)["state"] == "one-way"


def test_udp_idle_splits() -> None:
    rows = [pkt(0.0, "10.0.0.1", "10.0.0.9", 5000, 161, proto=17),
            pkt(200.0, "10.0.0.1", "10.0.0.9", 5000, 161, proto=17)]
    assert run([frame_of(rows)], udp_idle_s=60.0).height == 2


def _icmp_unreach(ts: float, router: str, c: str, s: str, proto: int, sp: int, dp: int) -> dict:
    ch, cl = text_to_ip(c)
    sh, sl = text_to_ip(s)
    return pkt(ts, router, c, proto=1, icmp_type=3, icmp_code=3, q_proto=proto, q_src_hi=ch,
               q_src_lo=cl, q_dst_hi=sh, q_dst_lo=sl, q_sport=sp, q_dport=dp)


def test_icmp_unreachable_is_attached_to_the_udp_flow() -> None:
    rows = [pkt(0.0, "10.0.0.1", "10.0.0.9", 5000, 161, proto=17, pay=30),
            _icmp_unreach(0.01, "10.0.0.9", "10.0.0.1", "10.0.0.9", 17, 5000, 161)]
    s = run([frame_of(rows)])
    r = one(s)  # no separate ICMP session
    assert r["state"] == "unreachable" and r["proto"] == 17 and r["icmp_errors"] == 1
    assert r["pkts_c2s"] == 1 and r["pkts_s2c"] == 0 and ref_frame(r["ev_unreach"]) == 2
    assert ip_to_text(r["client_hi"], r["client_lo"]) == "10.0.0.1"


def test_icmp_unreachable_refuses_tcp_syn_in_a_later_batch() -> None:
    a = frame_of([pkt(0.0, "10.0.0.1", "10.9.9.9", 40020, 502, flags=SYN, seq=3)])
    b = frame_of([_icmp_unreach(0.2, "10.0.0.254", "10.0.0.1", "10.9.9.9", 6, 40020, 502)])
    r = one(run([a, b]))
    assert r["state"] == "refused" and r["icmp_errors"] == 1


def test_icmp_echo_answered() -> None:
    rows = [pkt(0.0, "10.0.0.1", "10.0.0.2", proto=1, icmp_type=8, icmp_code=0),
            pkt(0.01, "10.0.0.2", "10.0.0.1", proto=1, icmp_type=0, icmp_code=0)]
    r = one(run([frame_of(rows)]))
    assert r["proto"] == 1 and r["state"] == "answered"


def test_non_ip_and_portless_rows_make_no_session() -> None:
    rows = [pkt(0.0, "10.0.0.1", "10.0.0.2", 1, 2, proto=17),
            dict(pkt(0.1, "10.0.0.1", "10.0.0.2", proto=0), ip_ver=0, src_hi=None, src_lo=None),
            pkt(0.2, "10.0.0.1", "10.0.0.2", None, None, proto=17, ip_frag=True)]
    assert run([frame_of(rows)]).height == 1


# --- application facts ----------------------------------------------------------------------

def test_ops_app_and_session_ops() -> None:
    rows = handshake(0.0, "10.0.0.10", "10.0.0.20", 40030, 502, data=False)
    for i in range(3):
        rows += [pkt(0.1 + i, "10.0.0.10", "10.0.0.20", 40030, 502, flags=PSH | ACK, pay=12, app=APP_MODBUS),
                 pkt(0.2 + i, "10.0.0.20", "10.0.0.10", 502, 40030, flags=PSH | ACK, pay=11, app=APP_MODBUS)]
    p = frame_of(rows)
    ops = []
    for r in p.filter(pl.col("app") == APP_MODBUS).iter_rows(named=True):
        req = r["dport"] == 502
        ops.append(dict(file_id=0, frame=r["frame"], app=APP_MODBUS, code=3, cls=CLS_READ,
                        direction=DIR_REQUEST if req else DIR_RESPONSE, name="Read Holding Registers",
                        exception=None if req or r["frame"] != 7 else 2))
    s = run([p.slice(0, 5), p.slice(5)], ops_of(ops))
    r = one(s)
    assert r["app"] == APP_MODBUS and r["n_ops"] == 6 and ref_frame(r["ev_op"]) == 4
    so = session_ops(s)
    req = one(so, from_client=True)
    assert req["count"] == 3 and req["requests"] and req["first_frame"] == 4
    assert ip_to_text(req["src_hi"], req["src_lo"]) == "10.0.0.10"
    assert ip_to_text(req["dst_hi"], req["dst_lo"]) == "10.0.0.20"
    resp = one(so, from_client=False)
    assert resp["count"] == 3 and resp["exceptions"] == 1 and resp["first_frame"] == 5


def test_tls_and_rdp_facts() -> None:
    rows = handshake(0.0, "10.0.0.1", "203.0.113.5", 40040, 443, data=False)
    rows += [pkt(0.1, "10.0.0.1", "203.0.113.5", 40040, 443, flags=PSH | ACK, pay=200, app=20,
                 tls_hs=1, tls_ja3_hash="abc"),
             pkt(0.2, "203.0.113.5", "10.0.0.1", 443, 40040, flags=PSH | ACK, pay=900, app=20, tls_hs=2,
                 cert_subject="CN=x", cert_issuer="CN=x", cert_self_signed=True)]
    rows += handshake(1.0, "10.0.0.1", "10.0.0.50", 40041, 3389, data=False)
    rows.append(pkt(1.1, "10.0.0.1", "10.0.0.50", 40041, 3389, flags=PSH | ACK, pay=50, app=21,
                    rdp_cookie="administrator"))
    s = run([frame_of(rows)])
    t = one(s, server_port=443)
    assert t["tls_no_sni"] and t["tls_sni"] is None and t["tls_ja3_hash"] == "abc"
    assert t["cert_subject"] == "CN=x" and t["cert_self_signed"] and ref_frame(t["ev_tls"]) == 4
    r = one(s, server_port=3389)
    assert r["rdp_cookie"] == "administrator" and not r["tls_no_sni"] and ref_frame(r["ev_rdp"]) == 9


# --- end to end on crafted and real captures --------------------------------------------------

def decode_sessions(paths: list[Path], chunk: int = 65536) -> pl.DataFrame:
    from plantwatch.core.capture.files import read_batches
    from plantwatch.core.decode import Decoder
    tr, dec, out = SessionTracker(), Decoder(), []
    for b in read_batches([str(p) for p in paths], chunk_packets=chunk):
        d = dec.decode(b)
        out.append(tr.update(d.packets, d.ops))
    out.append(tr.flush())
    return pl.concat(out)


def test_cotp_dr_refusal_crafted(tmp_path: Path) -> None:
    c, s, cm, sm = "10.10.10.57", "10.20.20.5", "00:0c:29:aa:bb:cc", "00:1b:1b:01:02:03"
    t = 1_700_000_000 * S
    recs = [
        (t, F.tcp_frame(cm, sm, c, s, 49200, 102, seq=10, flags=F.TCP_SYN)),
        (t + 1000, F.tcp_frame(sm, cm, s, c, 102, 49200, seq=500, ack=11, flags=F.TCP_SYN | F.TCP_ACK)),
        (t + 2000, F.tcp_frame(cm, sm, c, s, 49200, 102, seq=11, ack=501, flags=F.TCP_ACK)),
        (t + 3000, F.tcp_frame(cm, sm, c, s, 49200, 102, F.cotp_cr(), seq=11, ack=501)),
        (t + 4000, F.tcp_frame(sm, cm, s, c, 102, 49200, F.cotp_dr(), seq=501, ack=33)),
    ]
    path = tmp_path / "dr.pcap"
    write_pcap(path, recs)
    r = one(decode_sessions([path]))
    assert r["state"] == "refused" and r["app"] == APP_S7 and ref_frame(r["ev_dr"]) == 5
    assert r["handshake"]


def tshark_conversations(path: Path, proto: str) -> Counter:
    out = subprocess.run(["tshark", "-q", "-z", f"conv,{proto}", "-r", str(path)],
                         capture_output=True, text=True, check=True).stdout
    pat = re.compile(r"^(\S+):(\d+)\s+<->\s+(\S+):(\d+)\s+(\d+)\s.*?\s(\d+)\s+\S+(?: bytes| kB| MB)?\s+(\d+)\s")
    conv: Counter = Counter()
    for line in out.splitlines():
        m = pat.match(line)
        if m:
            ends = tuple(sorted([(m[1], int(m[2])), (m[3], int(m[4]))]))
            conv[(ends, int(m[5]) + int(m[6]))] += 1
    return conv


def our_conversations(s: pl.DataFrame, proto: int) -> Counter:
    conv: Counter = Counter()
    for r in s.filter(pl.col("proto") == proto).iter_rows(named=True):
        ends = tuple(sorted([(ip_to_text(r["client_hi"], r["client_lo"]), r["client_port"]),
                             (ip_to_text(r["server_hi"], r["server_lo"]), r["server_port"])]))
        conv[(ends, r["pkts_c2s"] + r["pkts_s2c"])] += 1
    return conv


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("name, chunk", [
    (name, chunk)
    for name, small in (("s7comm_snap7.pcap", 13), ("modbus_mixed_mb2.pcap", 1500),
                        ("c37118_mixed.pcap", 300), ("dnp3_test_data_part1.pcap", 17),
                        ("s7comm_diag_read.pcapng", 97))
    for chunk in (65536, small)])  # small: sessions cross many batch boundaries
def test_conversations_match_tshark(name: str, chunk: int) -> None:
    s = decode_sessions([REAL / name], chunk)
    for proto, pname in ((6, "tcp"), (17, "udp")):
        want = tshark_conversations(REAL / name, pname)
        got = our_conversations(s, proto)
        assert got == want, (pname, set(got.items()) ^ set(want.items()))


def tshark_tcp_flags(path: Path) -> dict[int, dict[str, int]]:
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp", "-T", "fields", "-e", "tcp.stream",
                          "-e", "tcp.flags.syn", "-e", "tcp.flags.ack", "-e", "tcp.flags.reset",
                          "-e", "tcp.flags.fin"], capture_output=True, text=True, check=True).stdout
    st: dict[int, dict[str, int]] = {}
    for line in out.splitlines():
        stream, syn, ack, rst, fin = line.split("\t")
        d = st.setdefault(int(stream), Counter())
        d["syn"] += syn in ("1", "True") and ack not in ("1", "True")
        d["synack"] += syn in ("1", "True") and ack in ("1", "True")
        d["rst"] += rst in ("1", "True")
        d["fin"] += fin in ("1", "True")
    return st


@needs_tshark
@pytest.mark.tshark
def test_states_agree_with_tshark_flags_modbus_mixed() -> None:
    path = REAL / "modbus_mixed_mb2.pcap"
    s = decode_sessions([path]).filter(pl.col("proto") == 6)
    flags = tshark_tcp_flags(path)
    assert len(flags) == s.height
    # sessions whose streams saw an RST / a FIN, by tshark, versus ours
    want_rst = sum(1 for d in flags.values() if d["rst"])
    got_rst = s.filter((pl.col("rst_client") + pl.col("rst_server")) > 0).height
    assert got_rst == want_rst
    want_syn = sum(1 for d in flags.values() if d["syn"])
    assert s.filter(pl.col("ev_syn").is_not_null()).height == want_syn
    counts = Counter(s["state"].to_list())
    assert counts["closed"] + counts["reset"] + counts["refused"] >= 1
    assert set(counts) <= {"established", "closed", "reset", "refused", "unanswered", "attempted"}


def test_modbus_mixed_poller_and_controllers() -> None:
    s = decode_sessions([REAL / "modbus_mixed_mb2.pcap"])
    mb = s.filter((pl.col("proto") == 6) & (pl.col("server_port") == 502))
    clients = {ip_to_text(h, lo) for h, lo in mb.select("client_hi", "client_lo").iter_rows()}
    assert clients == {"141.81.0.10"}
    servers = {ip_to_text(h, lo) for h, lo in mb.select("server_hi", "server_lo").iter_rows()}
    assert len(servers) >= 10 and all(x.startswith("141.81.0.") for x in servers)
    assert (mb["app"] == APP_MODBUS).sum() >= 10
    so = session_ops(mb).filter(pl.col("from_client") & (pl.col("cls") == CLS_READ))
    assert so["count"].sum() > 100
    # the evidence refs point into the file
    r = mb.sort("first_ts").row(0, named=True)
    assert ref_file(r["ev_op"]) == 0 and r["first_frame"] <= ref_frame(r["ev_op"]) <= r["last_frame"]


def test_ipv6_session() -> None:
    rows = handshake(0.0, "fd00:10::5", "fd00:20::9", 40050, 4840)
    r = one(run([frame_of(rows)]))
    assert r["state"] == "established" and r["server_port"] == 4840
    assert ip_to_text(r["client_hi"], r["client_lo"]) == "fd00:10::5"
    assert ip_to_text(r["server_hi"], r["server_lo"]) == "fd00:20::9"


def test_linger_after_reset() -> None:
    rows = handshake(0.0, "10.0.0.1", "10.0.0.2", 40060, 502)
    rows.append(pkt(0.1, "10.0.0.2", "10.0.0.1", 502, 40060, flags=RST, seq=9041))
    late = [pkt(0.5, "10.0.0.1", "10.0.0.2", 40060, 502, flags=ACK, seq=113),   # within linger
            pkt(9.0, "10.0.0.1", "10.0.0.2", 40060, 502, flags=ACK, seq=113)]   # long after
    for batches in ([frame_of(rows + late)], [frame_of(rows), frame_of(late)]):
        s = run(batches, tcp_linger_s=2.0).sort("first_ts")
        assert s["state"].to_list() == ["reset", "established"]
        assert s["pkts_c2s"].to_list() == [4, 1]


def random_traffic(seed: int, n_flows: int = 3000) -> pl.DataFrame:
    """Many short TCP/UDP conversations with handshakes, resets, closes, retries and idle gaps."""
    import numpy as np
    rng = np.random.default_rng(seed)
    rows: list[tuple] = []
    for f in range(n_flows):
        c = f"10.1.{f % 200}.{1 + f % 250}"
        s_ = f"10.2.{rng.integers(0, 4)}.{rng.integers(1, 20)}"
        cp, sp = int(40000 + f % 20000), int(rng.choice([80, 102, 443, 502, 161]))
        t = float(rng.uniform(0, 600))
        kind = int(rng.integers(0, 6))
        isn = int(rng.integers(0, 2**31))
        if sp == 161:
            for i in range(int(rng.integers(1, 4))):
                rows.append((t + i * 70, c, s_, cp, sp, 17, 0, 0))
                if kind % 2:
                    rows.append((t + i * 70 + 0.01, s_, c, sp, cp, 17, 0, 0))
            continue
        rows.append((t, c, s_, cp, sp, 6, SYN, isn))
        if kind == 0:      # unanswered, retried
            rows += [(t + 1, c, s_, cp, sp, 6, SYN, isn), (t + 3, c, s_, cp, sp, 6, SYN, isn)]
            continue
        if kind == 1:      # refused
            rows.append((t + 0.001, s_, c, sp, cp, 6, RST | ACK, 0))
            continue
        rows += [(t + 0.001, s_, c, sp, cp, 6, SYN | ACK, 7), (t + 0.002, c, s_, cp, sp, 6, ACK, isn + 1)]
        for i in range(int(rng.integers(0, 6))):
            rows.append((t + 0.01 + i, c, s_, cp, sp, 6, PSH | ACK, isn + 1))
            rows.append((t + 0.02 + i, s_, c, sp, cp, 6, PSH | ACK, 8))
        end = t + 10
        if kind == 2:
            rows += [(end, c, s_, cp, sp, 6, FIN | ACK, isn + 2), (end + 0.1, s_, c, sp, cp, 6, FIN | ACK, 9)]
            rows.append((end + 0.5, c, s_, cp, sp, 6, SYN, isn + 99999))  # port reuse
        elif kind == 3:
            rows.append((end, s_, c, sp, cp, 6, RST, 9))
        elif kind == 4:
            rows.append((end + 400, c, s_, cp, sp, 6, PSH | ACK, isn + 2))  # after an idle gap
    rows.sort(key=lambda r: r[0])
    return frame_of([pkt(r[0], r[1], r[2], r[3], r[4], proto=r[5], flags=r[6], seq=r[7], pay=10)
                     for r in rows])


@pytest.mark.parametrize("compact_min", [4096, 8])
def test_batching_does_not_change_sessions(compact_min: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from plantwatch.core.flows import sessions
    monkeypatch.setattr(sessions._OpenTable, "COMPACT_MIN", compact_min)
    p = random_traffic(1)
    kw = {"tcp_idle_s": 300.0, "udp_idle_s": 60.0}
    whole = run([p], **kw).sort("session_id")
    assert whole.height > 3000
    assert set(whole["state"]) >= {"unanswered", "refused", "closed", "reset", "established",
                                   "answered", "attempted"} - {"attempted"}
    for size in (997, 5003):
        parts = [p.slice(i, size) for i in range(0, p.height, size)]
        got = run(parts, **kw).sort("session_id")
        assert got.drop("ops").to_dicts() == whole.drop("ops").to_dicts(), size


def test_syn_at_end_of_input_is_attempted_then_unanswered() -> None:
    t = SessionTracker(tcp_unanswered_s=5.0)
    t.update(frame_of([pkt(0.0, "10.0.0.1", "10.0.0.9", 40070, 102, flags=SYN, seq=1),
                       pkt(3.0, "10.0.0.1", "10.0.0.8", 40071, 102, flags=SYN, seq=1, frame=2)]), None)
    s = t.flush().sort("first_ts")
    # packet time at the end is 3.0: the first SYN waited 3 s, not yet 5
    assert s["state"].to_list() == ["attempted", "attempted"]
    t2 = SessionTracker(tcp_unanswered_s=2.0)
    first = t2.update(frame_of([pkt(0.0, "10.0.0.1", "10.0.0.9", 40070, 102, flags=SYN, seq=1),
                                pkt(3.0, "10.0.0.1", "10.0.0.8", 40071, 102, flags=SYN, seq=1, frame=2)]), None)
    assert first["state"].to_list() == ["unanswered"] and first["server_hi"].to_list() == [0]
    later = t2.update(frame_of([pkt(3.5, "10.0.0.5", "10.0.0.6", 40000, 2000, proto=17, frame=3)]), None)
    assert later.height == 0
    s2 = t2.flush().sort("first_ts")
    assert s2["state"].to_list() == ["attempted", "unanswered"]


def test_state_survives_a_store_round_trip(tmp_path: Path) -> None:
    from plantwatch.core.store.database import Store
    rows = handshake(0.0, "10.0.0.1", "10.0.0.2", 40080, 502)
    more = [pkt(1.0, "10.0.0.1", "10.0.0.2", 40080, 502, flags=PSH | ACK, pay=12, frame=6),
            pkt(1.1, "10.0.0.2", "10.0.0.1", 502, 40080, flags=PSH | ACK, pay=11, frame=7)]
    whole = run([frame_of([dict(r) for r in rows + more])])
    a = SessionTracker()
    a.update(frame_of([dict(r) for r in rows]), None)
    assert a.open_sessions().height == 1
    st = Store(tmp_path / "s.sqlite")
    pipeline_state.save(st, "sessions", a)
    b = SessionTracker()
    assert pipeline_state.load(st, "sessions", b)
    got = pl.concat([b.update(frame_of(more), None), b.flush()])
    st.close()
    assert got.drop("ops").to_dicts() == whole.drop("ops").to_dicts()
