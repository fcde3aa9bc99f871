"""Differential test of the controller-protocol decoders against tshark: Omron FINS, Beckhoff
ADS/AMS, HART-IP, IEEE C37.118, OPC UA off its port, EtherNet/IP List Targets, the S7 cyclic item
count and the Modbus FC 24 reference (issue 14 items 4-8; MELSEC has no tshark 4.0 dissector and
is checked on hand-verified frames in tests/test_decode_plc.py).

Frame by frame as tests/test_tshark_ics.py: every tshark field we also decode, on the real
captures of tests/data/real (see NOTICE.md) and on a synthetic capture for the operations those
lack (FINS run/stop/write/program area/clock, ADS write control and write, several PDUs per
segment). Exclusions are per frame, with the reason beside them.
"""

from __future__ import annotations

import struct
from functools import cache
from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.decode.schema import (
    APP_ADS,
    APP_C37118,
    APP_ENIP,
    APP_FINS,
    APP_HARTIP,
    APP_MODBUS,
    APP_OPCUA,
    APP_S7,
    DIR_REQUEST,
    DIR_RESPONSE,
)
from plantwatch.core.synth import frames as F
from plantwatch.core.synth.pcapwriter import write_pcap
from tests.oracle import needs_tshark, tshark_fields
from tests.test_tshark_ics import Spec, check, decode_file, field, hexfmt, ops_by_frame

REAL = Path(__file__).parent / "data" / "real"
pytestmark = needs_tshark


@cache
def _tshark(path: Path, fields: tuple[str, ...], extra: tuple[str, ...]) -> dict[int, dict[str, str]]:
    return tshark_fields(path, list(fields), extra=list(extra))


def compare(path: Path, specs: dict[str, Spec], app: int, exclude: dict[int, str] | None = None,
            extra: tuple[str, ...] = ()) -> tuple[dict[str, int], list[str]]:
    """(frames compared per field, mismatches): our ops of `app` against tshark's fields."""
    _, ops = decode_file(path)
    mine = ops_by_frame(ops.filter(pl.col("app") == app))
    names = tuple(specs) + ("tcp.analysis.retransmission", "tcp.segments")
    theirs = _tshark(path, names, extra)
    counts = dict.fromkeys(specs, 0)
    bad: list[str] = []
    for frame, fields in theirs.items():
        if frame in (exclude or {}) or fields["tcp.analysis.retransmission"]:
            continue  # retransmissions: see test_tshark_ics.retransmissions
        for name, spec in specs.items():
            get, norm = spec if isinstance(spec, tuple) else (spec, None)
            want = norm(fields[name]) if norm else fields[name]
            ours = ",".join(str(v) for v in (get(op) for op in mine.get(frame, [])) if v is not None)
            if ours != want:
                bad.append(f"{path.name} frame {frame} {name}: tshark {want!r} ours {ours!r}")
            elif ours:
                counts[name] += 1
    return counts, bad


def reassembled(path: Path, extra: tuple[str, ...] = ()) -> dict[int, str]:
    """A PDU spanning TCP segments: tshark reports it on the segment completing it, we on the
    one holding its header (no TCP reassembly here): both frames are left out."""
    out: dict[int, str] = {}
    for f, v in _tshark(path, ("tcp.segment",), extra).items():
        if v["tcp.segment"]:
            out[f] = "PDU completed by this segment (TCP reassembly)"
            for s in v["tcp.segment"].split(","):
                out.setdefault(int(s), "first segment of a reassembled PDU")
    return out


def _drop_zero(v: str) -> str:
    return ",".join(x for x in v.split(",") if x and int(x, 16) != 0)


def _dir(op: dict) -> str:
    return "1" if op["direction"] == DIR_RESPONSE else "0"


# --------------------------------------------------------------------------------------------
# Omron FINS
FINS_SPECS: dict[str, Spec] = {
    "omron.command": field("code", fmt=hexfmt(4)),
    "omron.sid": field("trans", fmt=hexfmt(2)),
    "omron.da1": field("unit", fmt=hexfmt(2)),
    "omron.icf.dtb": lambda op: f"0x{int(_dir(op)):02x}",  # ICF bit 6: response
    "omron.response.code": (field("exception", fmt=hexfmt(4)), _drop_zero),
    "omron.memory.area.read": field("area", fmt=hexfmt(2)),
    "omron.memory.address": field("ref", fmt=lambda v: f"0x{int(v) >> 8:04x}"),
    "omron.memory.address.bits": field("ref", fmt=lambda v: f"0x{int(v) & 0xFF:02x}"),
    "omron.memory.numitems": field("count"),
}


def test_fins_real() -> None:
    counts, bad = compare(REAL / "omron_omron_test.pcap", FINS_SPECS, APP_FINS)
    check(counts, bad, ("omron.command", "omron.sid", "omron.icf.dtb"))
    _, ops = decode_file(REAL / "omron_omron_test.pcap")
    fins = ops.filter(pl.col("app") == APP_FINS)
    assert fins.height == 4 and set(fins["name"]) == {"Controller Data Read"}


# --------------------------------------------------------------------------------------------
# Beckhoff ADS/AMS
ADS_SPECS: dict[str, Spec] = {
    "ams.cmdid": field("code", lambda op: op["group"] is None),
    "ams.invokeid": field("trans", lambda op: op["group"] is None, hexfmt(8)),
    "ams.state_response": lambda op: _dir(op) if op["group"] is None else None,
    "ams.ads_indexgroup": field("area", fmt=hexfmt(8)),
    "ams.ads_indexoffset": field("ref", fmt=hexfmt(8)),
}
# tshark shows the length of Read responses too; we keep the request's (requests only), and the
# read length of a Read Write request (ams.ads_cbreadlength)
ADS_REQ_SPECS: dict[str, Spec] = {
    "ams.ads_cblength": field("count", lambda op: op["code"] != 9),
    "ams.ads_cbreadlength": field("count", lambda op: op["code"] == 9),
    "ams.ads_state": field("sub", lambda op: op["code"] == 5, hexfmt(4)),
}


def _ads_exceptions(path: Path, exclude: dict[int, str]) -> tuple[int, list[str]]:
    """exception = AMS error code, or else the ADS result of a response, when not 0. tshark 4.0
    shows no field of a Read Write response (cmd 9): those are checked on the spec layout in
    tests/test_decode_plc.py instead."""
    _, ops = decode_file(path)
    mine = ops_by_frame(ops.filter(pl.col("app") == APP_ADS))
    t = _tshark(path, ("ams.errorcode", "ams.adsresult", "ams.cmdid", "ams.state_response"), ())
    n, bad = 0, []
    for f, v in t.items():
        if not v["ams.cmdid"] or f in exclude or (v["ams.cmdid"] == "9" and v["ams.state_response"] == "1"):
            continue
        codes = [int(x, 16) for x in (v["ams.errorcode"] + "," + v["ams.adsresult"]).split(",") if x]
        want = next((c for c in codes if c), None)
        got = [op["exception"] for op in mine.get(f, [])]
        if got != [want]:
            bad.append(f"frame {f}: tshark {want} ours {got}")
        n += want is not None
    return n, bad


def ads_several(path: Path) -> dict[int, str]:
    """tshark 4.0 dissects only the first AMS packet of a TCP segment (AMS/TCP header 6 + AMS
    header 32 + cbData shorter than the segment); we report every one."""
    t = _tshark(path, ("tcp.len", "ams.cbdata"), ())
    return {f: "several AMS packets in one segment" for f, v in t.items()
            if v["ams.cbdata"] and int(v["tcp.len"]) > 38 + int(v["ams.cbdata"].split(",")[0])}


@pytest.mark.parametrize("name", ["beckoff_beckofflink.pcapng", "synthetic"])
def test_ads(name: str, tmp_path: Path) -> None:
    path = REAL / name if name != "synthetic" else _synthetic(tmp_path)
    several = ads_several(path)
    assert bool(several) == (name == "synthetic")
    counts, bad = compare(path, ADS_SPECS, APP_ADS, several)
    check(counts, bad, tuple(ADS_SPECS))
    responses = {f for f, v in _tshark(path, ("ams.state_response",), ()).items()
                 if "1" in v["ams.state_response"].split(",")}
    counts, bad = compare(path, ADS_REQ_SPECS, APP_ADS,
                          {**dict.fromkeys(responses, "response"), **several})
    check(counts, bad, ("ams.ads_cblength", "ams.ads_cbreadlength") if name != "synthetic"
          else ("ams.ads_state",))
    n, bad = _ads_exceptions(path, several)
    assert not bad, bad[:10]
    assert n > 0


def test_ads_route_discovery_udp() -> None:
    """UDP 48899 (tshark 4.0 has no dissector: 'data'): AMS/UDP discovery, request and answer."""
    _, ops = decode_file(REAL / "beckoff_beckofflink.pcapng")
    udp = ops.filter((pl.col("app") == APP_ADS) & (pl.col("group") == 1))
    assert udp.select("frame", "code", "direction", "name").rows() == [
        (3, 1, DIR_REQUEST, "Route Discovery"), (4, 1, DIR_RESPONSE, "Route Discovery")]


# --------------------------------------------------------------------------------------------
# HART-IP
HART_SPECS: dict[str, Spec] = {
    "hart_ip.message_id": field("code"),
    "hart_ip.transaction_id": field("trans"),
    "hart_ip.message_type": lambda op: {DIR_REQUEST: 0, DIR_RESPONSE: 1}.get(op["direction"]),
    "hart_ip.pt.command": field("sub"),
}


def test_hartip() -> None:
    path = REAL / "hart_hart_ip.pcap"
    # frame 27: an ICMP port unreachable quoting a HART-IP response; no op of its own
    counts, bad = compare(path, HART_SPECS, APP_HARTIP, {27: "ICMP error quoting HART-IP"})
    check(counts, bad, tuple(HART_SPECS))
    assert counts["hart_ip.message_id"] == 48  # 24 UDP (mostly on the server's port 5095) + 24 TCP


# --------------------------------------------------------------------------------------------
# IEEE C37.118
C37_SPECS: dict[str, Spec] = {
    "synphasor.frtype": field("code", fmt=hexfmt(4)),
    "synphasor.command": field("sub", fmt=hexfmt(4)),
    "synphasor.idcode_stream_source": field("unit"),
}


def c37_bare_header(path: Path) -> dict[int, str]:
    """tshark 4.0 leaves a header frame without text (FRAMESIZE 16: the common header and the
    checksum, valid per C37.118.2) undissected; we report it (frame type 1)."""
    t = _tshark(path, ("tcp.payload", "synphasor.frtype"), ())
    return {f: "header frame without text" for f, v in t.items()
            if v["tcp.payload"].startswith("aa1") and v["tcp.payload"][4:8] == "0010"
            and not v["synphasor.frtype"]}


@pytest.mark.parametrize("name", ["C37.118_C37.118_1PMU_TCP.pcap", "c37118_mixed.pcap"])
def test_c37118(name: str) -> None:
    path = REAL / name
    bare = c37_bare_header(path)
    assert len(bare) == (1 if name == "c37118_mixed.pcap" else 0)
    counts, bad = compare(path, C37_SPECS, APP_C37118, {**reassembled(path), **bare})
    check(counts, bad, tuple(C37_SPECS))
    _, ops = decode_file(path)
    names = set(ops.filter(pl.col("app") == APP_C37118)["name"])
    assert {"Turn On Data Transmission", "Send CFG-2 Frame", "Data Frame"} <= names


# --------------------------------------------------------------------------------------------
# OPC UA off 4840 (tshark only on 4840: told to decode 12001 as OPC UA)
OPCUA_SPECS: dict[str, Spec] = {
    "opcua.transport.type": field("service"),
    "opcua.servicenodeid.numeric": field("code"),
}


def test_opcua_on_another_port() -> None:
    path = REAL / "OPC_opc-ua-ap-method-wireshark-freeze.pcap"
    extra = ("-d", "tcp.port==12001,opcua")
    counts, bad = compare(path, OPCUA_SPECS, APP_OPCUA, reassembled(path, extra), extra)
    check(counts, bad, tuple(OPCUA_SPECS))
    _, ops = decode_file(path)
    op = ops.filter(pl.col("app") == APP_OPCUA)
    assert {"HEL", "ACK", "OPN", "MSG", "ERR"} <= set(op["service"])
    assert "Call" in set(op["name"])  # the method call, frame 84 (and 37, the start of frame 42's)


# --------------------------------------------------------------------------------------------
# EtherNet/IP: List Targets (0x0001) and a CIP stop
ENIP_SPECS: dict[str, Spec] = {
    "enip.command": lambda op: f"0x{(op['code'] if op['sub'] is None else op['sub']):04x}",
}


def test_enip_list_targets() -> None:
    path = REAL / "openics_EIP-FirmwareChange_10650-10700.pcap"
    counts, bad = compare(path, ENIP_SPECS, APP_ENIP, reassembled(path))
    check(counts, bad, tuple(ENIP_SPECS))
    _, ops = decode_file(path)
    lt = ops.filter((pl.col("app") == APP_ENIP) & (pl.col("code") == 1) & pl.col("sub").is_null())
    assert lt["direction"].to_list() == [DIR_REQUEST, DIR_RESPONSE]
    assert set(lt["name"]) == {"List Targets"}


# --------------------------------------------------------------------------------------------
# No false positives: an op of these protocols only where tshark sees the protocol
PROTO_OF_APP = {APP_FINS: "omron", APP_ADS: "ams", APP_HARTIP: "hart_ip", APP_C37118: "synphasor",
                APP_OPCUA: "opcua"}
DECODE_AS = {"OPC_opc-ua-ap-method-wireshark-freeze.pcap": ("-d", "tcp.port==12001,opcua")}


@pytest.mark.parametrize("path", sorted(REAL.glob("*.pcap*")), ids=lambda p: p.name)
def test_plc_ops_only_where_tshark_sees_the_protocol(path: Path) -> None:
    """OPC UA off 4840 included: tshark is told the port only for the capture known to use one."""
    _, ops = decode_file(path)
    extra = DECODE_AS.get(path.name, ())
    protos = _tshark(path, ("frame.protocols", "udp.port"), extra)
    first = reassembled(path, extra)  # tshark shows such a PDU on its last segment
    bad = []
    for app, proto in PROTO_OF_APP.items():
        for f in set(ops.filter(pl.col("app") == app)["frame"].to_list()) - set(first):
            seen = protos[f]["frame.protocols"].split(":")
            if app == APP_ADS and "48899" in protos[f]["udp.port"]:
                continue  # AMS/UDP discovery: no tshark 4.0 dissector (test_ads_route_discovery_udp)
            if proto not in seen:
                bad.append(f"{path.name} frame {f}: our {proto} op, tshark {seen}")
    assert not bad, bad[:10]


# --------------------------------------------------------------------------------------------
# Synthetic capture: operations the real captures lack, each dissected by tshark 4.0.17
def fins(icf: int, sid: int, cmd: int, rest: bytes = b"", *, da1: int = 1, sa1: int = 0xFE) -> bytes:
    return bytes([icf, 0, 2, 0, da1, 0, 0, sa1, 0, sid]) + cmd.to_bytes(2, "big") + rest


def fins_tcp(cmd: int, body: bytes) -> bytes:
    return b"FINS" + struct.pack(">III", 8 + len(body), cmd, 0) + body


FINS_REQ, FINS_RESP = 0x80, 0xC0
FINS_FRAMES = [
    fins(FINS_REQ, 1, 0x0101, bytes.fromhex("82 0064 00 0002")),  # read DM100, 2 words
    fins(FINS_RESP, 1, 0x0101, bytes.fromhex("0000 1234 5678"), da1=0xFE, sa1=1),
    fins(FINS_REQ, 2, 0x0102, bytes.fromhex("82 00C8 00 0001 ABCD")),  # write DM200
    fins(FINS_REQ, 3, 0x0401, bytes.fromhex("FFFF 02")),  # run (monitor mode)
    fins(FINS_REQ, 4, 0x0402, bytes.fromhex("FFFF")),  # stop
    fins(FINS_RESP, 4, 0x0402, bytes.fromhex("1001"), da1=0xFE, sa1=1),  # end code 0x1001
    fins(FINS_REQ, 5, 0x0701),  # clock read
    fins(FINS_REQ, 6, 0x0702, bytes.fromhex("26 12 04 17 30 00 05")),  # clock write
    fins(FINS_REQ, 7, 0x0306, bytes.fromhex("FFFF 00000000 0100")),  # program area read
    fins(FINS_REQ, 8, 0x0307, bytes.fromhex("FFFF 00000000 0004 00010203")),  # program area write
]


def ams(cmd: int, invoke: int, data: bytes, *, resp: bool = False, err: int = 0) -> bytes:
    hdr = (bytes([5, 1, 2, 3, 1, 1]) + struct.pack("<H", 851) + bytes([10, 0, 0, 5, 1, 1])
           + struct.pack("<HHHIII", 33000, cmd, 5 if resp else 4, len(data), err, invoke))
    if resp:  # the response goes the other way
        hdr = hdr[8:16] + hdr[:8] + hdr[16:]
    return struct.pack("<HI", 0, len(hdr) + len(data)) + hdr + data


ADS_FRAMES = [
    (True, ams(5, 0x21, struct.pack("<HHI", 6, 0, 0))),  # write control STOP
    (False, ams(5, 0x21, struct.pack("<I", 0), resp=True)),
    (True, ams(3, 0x22, struct.pack("<III", 0x4020, 8, 2) + b"\x01\x00")),  # write %MB8
    (False, ams(3, 0x22, struct.pack("<I", 0x0701), resp=True)),  # ADS error 0x701
    (True, ams(2, 0x23, struct.pack("<III", 0xF005, 0x1234, 4))
     + ams(4, 0x24, b"")),  # a Read and a Read State in one segment
    (True, ams(5, 0x25, struct.pack("<HHI", 5, 0, 0))),  # write control RUN
]


def _s7_cyclic(tg: int, data: bytes) -> bytes:
    par = bytes.fromhex("000112") + bytes([4, 0x11 if tg >> 4 == 4 else 0x12, tg, 1, 0])
    s7 = (bytes([0x32, 7, 0, 0, 0, 9]) + struct.pack(">HH", len(par), len(data)) + par + data)
    return bytes([3, 0]) + struct.pack(">H", 7 + len(s7)) + bytes.fromhex("02f080") + s7


S7_ITEM = bytes.fromhex("120a10020001000184000000")
S7_CYCLIC_REQ = _s7_cyclic(0x42, bytes.fromhex("ff090010 0002 01 05") + S7_ITEM * 2)
S7_CYCLIC_PUSH = _s7_cyclic(0x02, bytes.fromhex("ff09000a 0001 ff040010 1234"))
MB_FC24 = bytes.fromhex("0007 0000 0004 01 18 04DE")  # Read FIFO Queue, pointer 0x04DE


def _synthetic(tmp_path: Path) -> Path:
    path = tmp_path / "plc_synthetic.pcap"
    if path.exists():
        return path
    cli, srv, mc, ms = "10.0.0.5", "10.0.0.9", "02:00:00:00:00:05", "02:00:00:00:00:09"
    flows: list[tuple[int, int, int, list[tuple[bool, bytes]]]] = [
        (17, 40100, 9600, [(f[0] == FINS_REQ, f) for f in FINS_FRAMES]),
        (6, 40101, 9600, [(True, fins_tcp(0, bytes(4))), (False, fins_tcp(1, bytes(8))),
                          (True, fins_tcp(2, FINS_FRAMES[3]) + fins_tcp(2, FINS_FRAMES[4])),
                          (True, fins_tcp(2, FINS_FRAMES[2]))]),
        (6, 40102, 48898, ADS_FRAMES),
        (6, 40103, 102, [(True, S7_CYCLIC_REQ), (False, S7_CYCLIC_PUSH)]),
        (6, 40104, 502, [(True, MB_FC24)]),
    ]
    recs = []
    t = 1_700_000_000_000_000_000
    for proto, cport, sport_, items in flows:
        seq = {True: 1000, False: 5000}
        if proto == 6:
            recs.append((t, F.tcp_frame(mc, ms, cli, srv, cport, sport_, seq=999, flags=0x02)))
            recs.append((t + 1, F.tcp_frame(ms, mc, srv, cli, sport_, cport, seq=4999, ack=1000,
                                            flags=0x12)))
            t += 2
        for to_srv, pay in items:
            t += 1_000_000
            a, b, ma, mb = (cli, srv, mc, ms) if to_srv else (srv, cli, ms, mc)
            pa, pb = (cport, sport_) if to_srv else (sport_, cport)
            if proto == 6:
                recs.append((t, F.tcp_frame(ma, mb, a, b, pa, pb, pay, seq=seq[to_srv],
                                            ack=seq[not to_srv])))
                seq[to_srv] += len(pay)
            else:
                recs.append((t, F.udp_frame(ma, mb, a, b, pa, pb, pay)))
    write_pcap(path, recs)
    return path


def test_synthetic_fins(tmp_path: Path) -> None:
    path = _synthetic(tmp_path)
    counts, bad = compare(path, FINS_SPECS, APP_FINS)
    check(counts, bad, tuple(FINS_SPECS))
    _, ops = decode_file(path)
    names = ops.filter(pl.col("app") == APP_FINS)["name"].to_list()
    assert {"Run (Start)", "Stop", "Memory Area Write", "Clock Read", "Clock Write", "Program Area Read",
            "Program Area Write"} <= set(names)


def test_synthetic_s7_cyclic_and_modbus_fc24(tmp_path: Path) -> None:
    path = _synthetic(tmp_path)
    counts, bad = compare(path, {"s7comm.param.itemcount": field("count")}, APP_S7)
    check(counts, bad, ("s7comm.param.itemcount",))
    counts, bad = compare(path, {"modbus.reference_num": field("ref"),
                                 "modbus.func_code": field("code")}, APP_MODBUS)
    check(counts, bad, ("modbus.reference_num",))


def test_enip_cip_stop_real() -> None:
    """A lone CIP Stop (SendUnitData, connected): tshark's service, our ACTION."""
    path = REAL / "EthernetIP_cip_stop_plc.pcap"
    specs: dict[str, Spec] = {"cip.sc": field("code", lambda op: op["sub"] is not None, hexfmt(2)),
                              **ENIP_SPECS}
    counts, bad = compare(path, specs, APP_ENIP)
    check(counts, bad, ("cip.sc",))
    _, ops = decode_file(path)
    assert ops.filter(pl.col("app") == APP_ENIP).select("name", "cls").rows() == [("Stop", 3)]
