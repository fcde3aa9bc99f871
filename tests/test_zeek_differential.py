"""The Zeek path against the packet path on public capture + log pairs.

Each capture goes through the decoder and session tracker; the logs Zeek wrote for it go through
plantwatch.core.pipeline.zeek. Both must give the same sessions (protocol, client, server, ports,
state) and the same ICS operations (counts by protocol, code and request/response). Where they
may not, the difference is listed below with its reason and its exact counts, so a change on
either side still fails.
"""

from __future__ import annotations

import pytest

from tests.zeek_support import ZEEK_DATA, op_counts, packet_sessions, tuples, zeek_sessions

# btest runs without conn.log: the session comes from protocol lines alone, which say nothing of
# SYN/FIN/RST, so its state is not compared (addresses, ports and protocol are).
NO_CONN_LOG = {"s7ident", "zeek_dnp3_read", "zeek_rdp_x509", "zeek_rdp_proprietary", "zeek_ssl"}

# (app, code, request?) -> (packet path count, Zeek path count), with the reason.
OPS_EXCEPTIONS: dict[str, dict[tuple, tuple[int, int]]] = {
    # One Read SZL answer spans two userdata PDUs (a follow-up request and the rest of the answer,
    # frames 5-6): the packet path counts the continuation as a Read SZL of its own, ICSNPP logs
    # one. Frame 44 is an S7 Ack (ROSCTR 2) with no parameter: an op without code in the packet
    # path; ICSNPP writes no line for it.
    "s7comm_snap7": {(2, 1025, True): (6, 5), (2, 1025, False): (6, 5), (2, None, False): (1, 0)},
    # Four Acks (ROSCTR 2) without parameter answering Start Upload: as above.
    "s7ident": {(2, None, False): (4, 0)},
    # The PLC's readProperty answer is segmented (4 segments): the packet path counts each
    # segment's ComplexACK, ICSNPP logs the reassembled answer (2 lines).
    "bacnet_segmented": {(6, 12, False): (4, 2)},
    # S7comm-plus V3 PDUs (with an integrity part): the packet path keeps them as operations
    # without a function code or direction; ICSNPP parses them. Same count (121) either way.
    "s7comm_plus": {(8, None, False): (121, 79), (8, 1266, True): (0, 26), (8, 1346, True): (0, 2),
                    (8, 1346, False): (0, 2), (8, 1356, True): (0, 6), (8, 1356, False): (0, 6)},
}

PAIRS = ["modbus", "s7comm_snap7", "s7comm_plus", "s7ident", "dnp3", "enip", "bacnet_segmented",
         "bacnet_errors", "zeek_ssl", "zeek_rdp_x509", "zeek_rdp_proprietary", "zeek_dhcp",
         "zeek_dnp3_read"]


@pytest.fixture(scope="module")
def both() -> dict:
    out = {}
    for name in PAIRS:
        folder = ZEEK_DATA / name
        out[name] = (packet_sessions(next(folder.glob("*.pcap"))), zeek_sessions(folder))
    return out


@pytest.mark.parametrize("name", PAIRS)
def test_same_sessions(both: dict, name: str) -> None:
    pkt, zk = both[name]
    assert pkt.height == zk.height > 0
    tp, tz = tuples(pkt), tuples(zk)
    if name in NO_CONN_LOG:
        tp = {k[:5]: n for k, n in tp.items()}
        tz = {k[:5]: n for k, n in tz.items()}
    assert tz == tp


@pytest.mark.parametrize("name", PAIRS)
def test_same_operations(both: dict, name: str) -> None:
    pkt, zk = both[name]
    op, oz = op_counts(pkt), op_counts(zk)
    exc = OPS_EXCEPTIONS.get(name, {})
    for key, (n_pkt, n_zeek) in exc.items():
        assert (op.pop(key, 0), oz.pop(key, 0)) == (n_pkt, n_zeek), key
    assert oz == op
    if name in ("modbus", "s7comm_snap7", "dnp3", "enip"):
        assert sum(oz.values()) > 40


def test_s7comm_plus_counts_agree_in_total(both: dict) -> None:
    pkt, zk = both["s7comm_plus"]
    assert pkt["n_ops"].sum() == zk["n_ops"].sum() == 121 + 34


def test_tls_facts_from_ssl_joined_to_x509(both: dict) -> None:
    pkt, zk = both["zeek_ssl"]
    cols = ["tls_sni", "tls_no_sni", "tls_version", "cert_subject", "cert_issuer", "cert_self_signed"]
    assert zk.select(cols).rows() == pkt.select(cols).rows()
    assert zk["cert_subject"][0].startswith("CN=*.gstatic.com")
    assert zk["ev_tls"][0] is not None


@pytest.mark.parametrize("name", ["zeek_rdp_x509", "zeek_rdp_proprietary"])
def test_rdp_cookie(both: dict, name: str) -> None:
    pkt, zk = both[name]
    assert sorted(zk["rdp_cookie"].to_list()) == sorted(pkt["rdp_cookie"].to_list())
    assert any(c and "\\" in c for c in zk["rdp_cookie"].to_list()) == (name == "zeek_rdp_proprietary")


def test_states_from_conn_log(both: dict) -> None:
    """The conn.log pairs cover closed (SF), reset (RSTR), mid-stream (OTH) and one-way UDP."""
    states = set()
    for name in PAIRS:
        if name not in NO_CONN_LOG:
            states |= {k[5] for k in tuples(both[name][1])}
    assert {"closed", "reset", "established", "one-way", "answered"} <= states
