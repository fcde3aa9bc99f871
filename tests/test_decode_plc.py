"""Unit tests of the controller-protocol decoders (FINS, ADS/AMS, MELSEC MC/SLMP, HART-IP,
C37.118) on byte-exact frames.

MELSEC has no tshark 4.0 dissector: its frames below are written from the published layouts
(MELSEC Communication Protocol Reference Manual SH-080008, SLMP Reference Manual SH-080956), each
field annotated, the length fields checked by hand (the first is the manual's own batch-read
example, D100-D102). The other protocols are checked against tshark in tests/test_tshark_plc.py.
"""

from __future__ import annotations

import random
import struct

import numpy as np
import polars as pl
import pytest

from plantwatch.core.decode import ads, c37118, fins, hartip, melsec
from plantwatch.core.decode.schema import (
    APP_MELSEC,
    CLS_ACTION,
    CLS_DISCOVER,
    CLS_NONE,
    CLS_READ,
    CLS_REPROGRAM,
    DIR_OTHER,
    DIR_REQUEST,
    DIR_RESPONSE,
)
from plantwatch.core.decode.view import PacketView
from tests.test_decode_ics import check, h, one, run
from tests.test_tshark_plc import FINS_FRAMES, ams, fins_tcp

# ------------------------------------------------------------------------------------ MELSEC
# 3E binary: subheader 5000 | net 00 | PC FF | I/O 03FF (LE) | station 00 | length (LE, bytes
# after it) | timer (LE) | command (LE) | subcommand (LE) | device number 24 LE | code | points
MC_BATCH_READ = h("5000 00 FF FF03 00 0C00 1000 0104 0000 640000 A8 0300")  # D100, 3 words
MC_RESPONSE = h("D000 00 FF FF03 00 0800 0000 9519 0212 3011")  # end code 0, 3 words
MC_ERROR = h("D000 00 FF FF03 00 0B00 51C0 00 FF FF03 00 0104 0000")  # end code C051 + error info
# 4E: subheader 5400, serial 1234 (LE 3412), 0000, then as 3E. Batch write M100-M107, bit units
MC_4E_WRITE = h("5400 3412 0000 00 FF FF03 00 1000 1000 0114 0100 640000 90 0800 11001100")
MC_STOP = h("5000 00 FF FF03 00 0800 1000 0210 0000 0100")  # remote STOP, mode 0001
MC_RUN = h("5000 00 FF FF03 00 0A00 1000 0110 0000 0100 00 00")  # remote RUN, mode, clear mode
MC_CPU_MODEL = h("5000 00 FF FF03 00 0600 1000 0101 0000")
# random read: 2 word points, 1 dword point, then device number 24 + code per point
MC_RANDOM_READ = h("5000 00 FF FF03 00 1400 1000 0304 0000 02 01 640000A8 C80000A8 2C0100A8")
# iQ-R batch read (subcommand 0002): device number 32, device code 16
MC_IQR_READ = h("5000 00 FF FF03 00 0E00 1000 0104 0200 64000000 A800 0300")
# ASCII 3E: the same fields as upper-case hex text, most significant first; device "D*" 000100
MC_ASCII_READ = b"500000FF03FF000018" + b"0010" + b"0401" + b"0000" + b"D*" + b"000100" + b"0003"
MC_ASCII_X = b"500000FF03FF000018" + b"0010" + b"0401" + b"0001" + b"X*" + b"0001A0" + b"0010"
MC_ASCII_PAUSE = b"500000FF03FF000010" + b"0010" + b"1003" + b"0000" + b"0001"
MC_ASCII_4E_RESP = b"D400" + b"1234" + b"0000" + b"00FF03FF00" + b"000C" + b"0000" + b"00010002"
# MELSOFT (GX Works), from tests/data/real/MELSEC_melsoft_UDP_clean_2.pcap frames 5-6
MELSOFT_REQ = bytes.fromhex(
    "57010000001111070000ffff030000fe03000020001c0a161400000000000000000000000000000000000000"
    "000121010000000001")
MELSOFT_RESP = bytes.fromhex(
    "d70100000011117f000000a80300ffff03000038009c0a18140000000000000000000000000000000000000000"
    "0000012101000000465835552d33324d542f455300000000294a000800000000")


def test_melsec_layout_lengths_are_consistent() -> None:
    """The hand-written frames satisfy their own length fields (binary: bytes after the field)."""
    for f in (MC_BATCH_READ, MC_RESPONSE, MC_ERROR, MC_STOP, MC_RUN, MC_CPU_MODEL, MC_RANDOM_READ,
              MC_IQR_READ):
        assert 9 + struct.unpack_from("<H", f, 7)[0] == len(f)
    assert 13 + struct.unpack_from("<H", MC_4E_WRITE, 11)[0] == len(MC_4E_WRITE)
    for f in (MC_ASCII_READ, MC_ASCII_X, MC_ASCII_PAUSE):
        assert 18 + int(f[14:18], 16) == len(f)
    assert 26 + int(MC_ASCII_4E_RESP[22:26], 16) == len(MC_ASCII_4E_RESP)
    assert 21 + struct.unpack_from("<H", MELSOFT_REQ, 19)[0] == len(MELSOFT_REQ)


def _mc(payloads: list[bytes], **kw: object) -> pl.DataFrame:
    _, ops = run(melsec, payloads, dport=5002, **kw)
    return ops


def test_melsec_binary_requests() -> None:
    ops = _mc([MC_BATCH_READ, MC_4E_WRITE, MC_STOP, MC_RUN, MC_CPU_MODEL, MC_RANDOM_READ,
               MC_IQR_READ])
    rows = ops.to_dicts()
    check(rows[0], code=0x0401, sub=0, ref=100, area=0xA8, count=3, unit=0xFF, cls=CLS_READ,
          name="Batch Read", direction=DIR_REQUEST, trans=None)
    check(rows[1], code=0x1401, sub=1, ref=100, area=0x90, count=8, trans=0x1234, cls=CLS_ACTION,
          name="Batch Write")
    check(rows[2], code=0x1002, name="Remote Stop", cls=CLS_ACTION, ref=None)
    check(rows[3], code=0x1001, name="Remote Run (Start)", cls=CLS_ACTION)
    check(rows[4], code=0x0101, name="Read CPU Model", cls=CLS_DISCOVER)
    check(rows[5], code=0x0403, count=3, ref=100, area=0xA8, cls=CLS_READ, name="Random Read")
    check(rows[6], code=0x0401, sub=2, ref=100, area=0xA8, count=3)


def test_melsec_binary_responses() -> None:
    ops = _mc([MC_RESPONSE, MC_ERROR], sport=5002)
    a, b = ops.to_dicts()
    check(a, direction=DIR_RESPONSE, code=None, exception=None, name="MC Response", cls=CLS_NONE)
    check(b, direction=DIR_RESPONSE, exception=0xC051)


def test_melsec_ascii() -> None:
    ops = _mc([MC_ASCII_READ, MC_ASCII_X, MC_ASCII_PAUSE, MC_ASCII_4E_RESP])
    r = ops.to_dicts()
    check(r[0], code=0x0401, sub=0, area=0xA8, ref=100, count=3, unit=0xFF, name="Batch Read")
    check(r[1], code=0x0401, sub=1, area=0x9C, ref=0x1A0, count=16)  # X is numbered in hex
    check(r[2], code=0x1003, name="Remote Pause", cls=CLS_ACTION)
    check(r[3], direction=DIR_RESPONSE, trans=0x1234, exception=None)


def test_melsoft_recognised_not_classified() -> None:
    ops = _mc([MELSOFT_REQ, MELSOFT_RESP], **{"state": {}})
    assert ops.select("direction", "service", "code", "cls").rows() == [
        (DIR_REQUEST, "MELSOFT", None, CLS_NONE), (DIR_RESPONSE, "MELSOFT", None, CLS_NONE)]


def test_melsec_claims_only_its_frames() -> None:
    """MC has no standard port: frames are told by their header on any port, and other traffic
    (a web server, broken lengths, bad ASCII hex, an implausible I/O number) is not MELSEC."""
    cols, ops = run(melsec, [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", MC_BATCH_READ[:-1],
                             MC_BATCH_READ + b"\x00", b"500000FF03FF000018" + b"0010GGGG" + b"0" * 16,
                             b"HTTP/1.1 200 OK\r\n\r\n"], dport=5000)
    assert ops.height == 0 and (cols.height == 0 or cols.filter(pl.col("app") == APP_MELSEC).height == 0)
    bad_io = MC_BATCH_READ[:5] + b"\x20" + MC_BATCH_READ[6:]  # I/O number 20FF
    _, ops = run(melsec, [MC_BATCH_READ, bad_io, MELSOFT_REQ[:4]], proto=17, dport=8080)
    assert ops["code"].to_list() == [0x0401]  # the discovery probe counts on UDP 5560 only


# ------------------------------------------------------------------------------------ FINS
def test_fins_udp_and_tcp_multi() -> None:
    _, ops = run(fins, FINS_FRAMES, proto=17, dport=9600)
    names = ops["name"].to_list()
    assert names[:5] == ["Memory Area Read", "Memory Area Read", "Memory Area Write", "Run (Start)", "Stop"]
    check(ops.row(0, named=True), area=0x82, ref=100 << 8, count=2, trans=1, unit=1,
          direction=DIR_REQUEST)
    check(ops.row(5, named=True), direction=DIR_RESPONSE, exception=0x1001, code=0x0402)
    assert ops.filter(pl.col("code") == 0x0307)["cls"].to_list() == [CLS_REPROGRAM]
    seg = fins_tcp(0, bytes(4)) + fins_tcp(2, FINS_FRAMES[3]) + fins_tcp(2, FINS_FRAMES[4])
    _, ops = run(fins, [seg], dport=9600)
    assert ops["name"].to_list() == ["Run (Start)", "Stop"]


# ------------------------------------------------------------------------------------ ADS
def test_ads_write_control_and_readwrite_response() -> None:
    stop = ams(5, 7, struct.pack("<HHI", 6, 0, 0))
    rw_resp = ams(9, 8, struct.pack("<II", 0x0710, 0), resp=True)  # result, length (spec layout)
    _, ops = run(ads, [stop, rw_resp, stop + ams(2, 9, struct.pack("<III", 0x4020, 0, 4))],
                 sport=851, dport=48898)
    r = ops.to_dicts()
    check(r[0], code=5, sub=6, name="Write Control (STOP)", cls=CLS_ACTION, trans=7)
    check(r[1], code=9, direction=DIR_RESPONSE, exception=0x0710)
    assert [o["name"] for o in r[2:]] == ["Write Control (STOP)", "Read"]
    check(r[3], area=0x4020, ref=0, count=4)


def test_ads_udp_add_route() -> None:
    add = struct.pack("<III", ads.UDP_MAGIC, 5, 6) + bytes(20)
    ans = struct.pack("<III", ads.UDP_MAGIC, 5, 0x80000006) + bytes(20)
    _, ops = run(ads, [add, ans], proto=17, dport=48899)
    assert ops.select("code", "group", "direction", "name", "cls").rows() == [
        (6, 1, DIR_REQUEST, "Add Route", CLS_ACTION), (6, 1, DIR_RESPONSE, "Add Route", CLS_ACTION)]


# ------------------------------------------------------------------------------------ HART-IP
def _hart(mtype: int, mid: int, seq: int, body: bytes = b"") -> bytes:
    return bytes([1, mtype, mid, 0]) + struct.pack(">HH", seq, 8 + len(body)) + body


def test_hartip_session_port_followed_by_state() -> None:
    """The UDP server answers from its own port: datagrams of a client that initiated on 5094."""
    init = _hart(0, 0, 1, bytes([1, 0, 0, 0x75, 0x30]))
    cmd1 = _hart(0, 3, 2, bytes([0x82, 0x26, 0x4E, 0, 0, 1, 1, 0, 0xAB]))  # long address, cmd 1
    view = PacketView.from_payloads([init, cmd1], proto=17, sport=49905, dport=5094)
    other = PacketView.from_payloads([cmd1], proto=17, sport=49905, dport=5095)
    st: dict = {}
    assert hartip.select(view, st).tolist() == [0, 1]
    rows = hartip.select(other, st)
    ops = hartip.decode(other, rows, st).ops
    assert ops is not None
    check(one(ops), code=3, sub=1, name="Read Primary Variable", cls=CLS_READ, trans=2)
    assert hartip.select(other, {}).size == 0  # no session seen: not claimed


# ------------------------------------------------------------------------------------ C37.118
def _c37(ftype: int, idcode: int, body: bytes) -> bytes:
    size = 16 + len(body)
    return bytes([0xAA, (ftype << 4) | 1]) + struct.pack(">HHII", size, idcode, 0, 0) + body + b"\x00\x00"


def test_c37118_commands_and_several_frames() -> None:
    on, off, cfg = _c37(4, 7, b"\x00\x02"), _c37(4, 7, b"\x00\x01"), _c37(4, 7, b"\x00\x05")
    data = _c37(0, 7, bytes(8))
    _, ops = run(c37118, [on, off + cfg, data], dport=4712)
    assert ops.select("code", "sub", "unit", "direction", "cls", "name").rows() == [
        (4, 2, 7, DIR_REQUEST, CLS_ACTION, "Turn On Data Transmission"),
        (4, 1, 7, DIR_REQUEST, CLS_ACTION, "Turn Off Data Transmission"),
        (4, 5, 7, DIR_REQUEST, CLS_DISCOVER, "Send CFG-2 Frame"),
        (0, None, 7, DIR_OTHER, CLS_READ, "Data Frame")]


# ------------------------------------------------------------------------------------ robustness
GARBAGE_CASES = [
    (fins, 17, 9600, FINS_FRAMES), (fins, 6, 9600, [fins_tcp(2, f) for f in FINS_FRAMES]),
    (ads, 6, 48898, [ams(2, 1, bytes(12)), ams(5, 2, bytes(8))]),
    (melsec, 6, 5002, [MC_BATCH_READ, MC_ASCII_READ, MC_4E_WRITE, MELSOFT_REQ]),
    (hartip, 17, 5094, [_hart(0, 3, 1, bytes([2, 0x80, 0, 0]))]),
    (c37118, 6, 4712, [_c37(4, 1, b"\x00\x02"), _c37(3, 1, bytes(40))]),
]


@pytest.mark.parametrize("mod,proto,port,frames", GARBAGE_CASES,
                         ids=[c[0].__name__.split(".")[-1] + str(c[1]) for c in GARBAGE_CASES])
def test_truncated_and_garbage_never_raise(mod, proto: int, port: int, frames: list[bytes]) -> None:
    rnd = random.Random(14)
    payloads = [f[:k] for f in frames for k in range(len(f) + 1)]
    payloads += [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 80))) for _ in range(300)]
    payloads += [f[:4] + bytes(rnd.randrange(256) for _ in range(len(f) - 4)) for f in frames * 20]
    view = PacketView.from_payloads(payloads, proto=proto, sport=40000, dport=port)
    st: dict = {}
    rows = mod.select(view, st)
    res = mod.decode(view, rows, st)
    if res.ops is not None and res.ops.height:
        assert np.isin(res.ops["row"].to_numpy(), rows).all()
