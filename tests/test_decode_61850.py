"""Unit tests of the IEC 61850 / PROFINET decoders on hand-built bytes (ISO 9506-2 / IEC 61850-8-1
/ IEC 61158-6-10 layouts), for what the real captures lack: MMS inside ISO session and
presentation with a domain-specific write, the GOOSE sequence rules, a DCP factory reset, the
MAC-only endpoint addresses."""

from __future__ import annotations

import numpy as np

from plantwatch.core.decode import addr, goose, mms, profinet
from plantwatch.core.decode.ics_61850 import (
    GOOSE_NEW_PUBLISHER,
    GOOSE_PUBLISH,
    GOOSE_SEQ_BACK,
    GOOSE_STATE_CHANGE,
)
from plantwatch.core.decode.schema import APP_MMS, CLS_ACTION, CLS_REPROGRAM, DIR_REQUEST
from plantwatch.core.decode.view import PacketView


def tlv(tag: int, body: bytes) -> bytes:
    assert len(body) < 128
    return bytes([tag, len(body)]) + body


def _tpkt_dt(user: bytes) -> bytes:
    body = b"\x02\xf0\x80" + user
    return b"\x03\x00" + (len(body) + 4).to_bytes(2, "big") + body


def _session_pres(mms_pdu: bytes) -> bytes:
    """Give tokens + data transfer SPDUs, then fully-encoded presentation data (context 3)."""
    pdv = tlv(0x30, tlv(0x02, b"\x03") + tlv(0xA0, mms_pdu))
    return b"\x01\x00\x01\x00" + tlv(0x61, pdv)


# write (5): { listOfVariable [0] { SEQ { name [0] { domain-specific [1] { "LD0", "XCBR1$CO$Pos" } } } },
#              listOfData [0] { boolean [3] TRUE } }
_NAME = tlv(0xA1, tlv(0x1A, b"LD0") + tlv(0x1A, b"XCBR1$CO$Pos"))
WRITE = tlv(0xA0, tlv(0x02, b"\x07") + tlv(0xA5, tlv(0xA0, tlv(0x30, tlv(0xA0, _NAME)))
                                            + tlv(0xA0, tlv(0x83, b"\x01"))))
DELETE_DOMAIN = tlv(0xA0, tlv(0x02, b"\x08") + b"\x9f\x24" + bytes([4]) + b"PROG")  # [36] Identifier
RESET = tlv(0xA0, tlv(0x02, b"\x09") + b"\xbf\x2b" + bytes([6]) + tlv(0x80, b"PI01"))  # [43] {[0] name}


def _decode(payloads: list[bytes]):
    view = PacketView.from_payloads(payloads, dport=102)
    rows = mms.select(view, {})
    return rows, mms.decode(view, rows, {})


def test_mms_inside_session_and_presentation() -> None:
    rows, res = _decode([_tpkt_dt(_session_pres(WRITE)), _tpkt_dt(DELETE_DOMAIN) + _tpkt_dt(RESET)])
    assert rows.tolist() == [0, 1]
    ops = res.ops.select("row", "app", "direction", "sub", "code", "trans", "domain", "service", "cls",
                         "name").rows()
    assert ops == [
        (0, APP_MMS, DIR_REQUEST, 0, 5, 7, "LD0", "XCBR1$CO$Pos", CLS_ACTION, "write"),
        (1, APP_MMS, DIR_REQUEST, 0, 36, 8, "PROG", None, CLS_REPROGRAM, "deleteDomain"),
        (1, APP_MMS, DIR_REQUEST, 0, 43, 9, None, "PI01", CLS_ACTION, "reset"),
    ]


def test_s7_is_not_mms() -> None:
    s7 = _tpkt_dt(bytes.fromhex("320100000001000e00000401120a10020001000184000000"))
    rows, _ = _decode([s7, _tpkt_dt(b"\x72\x01\x00\x10")])
    assert rows.size == 0


def test_malformed_mms_is_skipped() -> None:
    rows, res = _decode([_tpkt_dt(b"\xa0\x7f\x02\x01"), _tpkt_dt(_session_pres(b"\xa0\x05\x02"))])
    assert res.ops.height == 0


def test_goose_sequence_rules() -> None:
    st: dict = {}
    key = (1, "LD0/LLN0$GO$gcb")
    a, b, c = 0xA, 0xB, 0xC
    seq = [(a, 5, 0), (a, 5, 1), (a, 6, 0), (a, 6, 1),
           (b, 5, 9),   # an old frame again, from a MAC new to the block: a replay
           (a, 6, 2),   # the real publisher goes on undisturbed
           (c, 9, 0),   # a new MAC jumping the state
           (a, 6, 3), (a, 1, 0)]  # the publisher restarting: its own sequence goes back, once
    got = [goose._sequence(st, key, mac, s, q) for mac, s, q in seq]
    assert got == [GOOSE_PUBLISH, GOOSE_PUBLISH, GOOSE_STATE_CHANGE, GOOSE_PUBLISH, GOOSE_SEQ_BACK,
                   GOOSE_PUBLISH, GOOSE_NEW_PUBLISHER, GOOSE_PUBLISH, GOOSE_SEQ_BACK]


def test_dcp_factory_reset() -> None:
    # FrameID FEFD, Set request, Xid 7, DCPDataLength 6: block Control/ResetFactorySettings
    # (option 5, suboption 6), length 2, BlockQualifier 0x0002
    buf = bytes.fromhex("fefd 04 00 00000007 0000 0008 0506 0002 0002 0000".replace(" ", ""))
    op, pkt = profinet.parse_dcp(buf)
    assert op["code"] == 0x0400 and op["sub"] == 0x0506 and op["ref"] == 7 and not pkt


def test_mac_only_endpoints() -> None:
    hi, lo = addr.text_to_ip("01:0c:cd:01:00:00")
    assert hi == addr.L2_HI and lo == 0x010CCD010000
    assert addr.ip_to_text(hi, lo) == "01:0c:cd:01:00:00"
    kinds = addr.classify(np.array([hi, hi, hi], np.uint64),
                          np.array([lo, 0x000C29BA09EA, 0xFFFFFFFFFFFF], np.uint64)).tolist()
    assert kinds == [addr.KIND_MULTICAST, addr.KIND_LINK_LOCAL, addr.KIND_BROADCAST]
    assert addr.text_to_ip("10.0.0.1") == (0, 0xFFFF0A000001)


def test_profinet_rt_cyclic_frames_are_counted_per_pair(tmp_path) -> None:
    """RT class 1 frames (FrameID 0x8000-0xBFFF, VLAN-tagged as PROFINET sends them): labelled,
    not decoded, no op; one session per controller/device pair counts them."""
    import polars as pl

    from plantwatch.core.capture.files import read_batches
    from plantwatch.core.decode import Decoder
    from plantwatch.core.decode.schema import APP_PROFINET
    from plantwatch.core.flows.sessions import SessionTracker
    from plantwatch.core.synth import frames as F
    from plantwatch.core.synth.pcapwriter import write_pcap
    from tests.oracle import HAVE_TSHARK, tshark_fields

    ctl, dev = "00:1b:1b:00:00:01", "00:1b:1b:00:00:02"
    cyc = bytes(40) + b"\x00\x01\x35\x00"  # IO data, cycle counter, data status, transfer status
    recs = []
    for i in range(10):
        recs.append((i * 1_000_000, F.ether(dev, ctl, 0x8892, b"\x80\x01" + cyc, vlan=0, pcp=6)))
        recs.append((i * 1_000_000 + 500, F.ether(ctl, dev, 0x8892, b"\x80\x02" + cyc, vlan=0, pcp=6)))
    path = tmp_path / "pn_rt.pcap"
    write_pcap(path, recs)
    dec, tr = Decoder(), SessionTracker()
    for b in read_batches([str(path)]):
        d = dec.decode(b)
        tr.update(d.packets, d.ops)
    assert d.ops.height == 0
    assert d.packets["app"].to_list() == [APP_PROFINET] * 20
    s = tr.flush()
    assert s.height == 1 and s["pkts_c2s"][0] + s["pkts_s2c"][0] == 20 and s["app"][0] == APP_PROFINET
    assert {addr.ip_to_text(s["client_hi"][0], s["client_lo"][0]),
            addr.ip_to_text(s["server_hi"][0], s["server_lo"][0])} == {ctl, dev}
    if HAVE_TSHARK:
        t = tshark_fields(path, ["pn_rt.frame_id"])
        assert [t[f]["pn_rt.frame_id"] for f in sorted(t)] == [str(x) for x in
                                                              d.packets["pn_frame_id"].to_list()]
        assert pl.Series(d.packets["pn_frame_id"]).unique().sort().to_list() == [0x8001, 0x8002]
