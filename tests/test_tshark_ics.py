"""Differential test of the ICS application decoders against tshark (the decoders' acceptance).

For every real capture, plantwatch's OPS rows (and the per-packet `cotp_type`) are compared with
tshark's fields frame by frame. tshark lists every occurrence of a field in a frame joined with
',', in PDU order; we build the same string from our ops of that frame (ops lacking the field are
skipped, as tshark skips PDUs lacking it). A mismatch names the file, frame and field.

Where tshark legitimately differs, the frames are excluded precisely (not whole files), with the
reason next to the exclusion.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.decode import Decoder
from plantwatch.core.decode.ics import S7_MODE_TRANSITION
from plantwatch.core.decode.schema import (
    APP_BACNET,
    APP_DNP3,
    APP_ENIP,
    APP_GOOSE,
    APP_IEC104,
    APP_MODBUS,
    APP_OPCUA,
    APP_PROFINET,
    APP_S7,
    DIR_REQUEST,
    DIR_RESPONSE,
)
from tests.oracle import needs_tshark
from tests.oracle import tshark_fields as _tshark_fields

REAL = Path(__file__).parent / "data" / "real"
pytestmark = needs_tshark

Getter = Callable[[dict], object]
# A spec is a getter on one of our ops, or (getter, normaliser of tshark's string).
Spec = Getter | tuple[Getter, Callable[[str], str]]


@cache
def _tshark_all(path: Path) -> dict[int, dict[str, str]]:
    return _tshark_fields(path, ALL_FIELDS)


def tshark_fields(path: Path, fields: list[str]) -> dict[int, dict[str, str]]:
    """tshark's fields of every frame, from one cached run per file over ALL_FIELDS."""
    return {f: {k: v[k] for k in fields} for f, v in _tshark_all(path).items()}


@cache
def decode_file(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    from plantwatch.core.capture.files import read_batches

    dec = Decoder()
    packets, ops = [], []
    for b in read_batches([path], chunk_packets=4096):
        d = dec.decode(b)
        packets.append(d.packets.select("frame", "app", "cotp_type"))
        ops.append(d.ops)
    return pl.concat(packets), pl.concat(ops)


def ops_by_frame(ops: pl.DataFrame) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for op in ops.iter_rows(named=True):
        out.setdefault(op["frame"], []).append(op)
    return out


def _fmt(v: object) -> str:
    return str(v)


def _uniq(v: str) -> str:
    return ",".join(sorted(set(v.split(",")) - {""}))


def compare(path: Path, specs: dict[str, Spec], app: int | tuple[int, ...],
            exclude: dict[int, str] | None = None) -> tuple[dict[str, int], list[str]]:
    """Compare tshark fields with our ops; returns (frames compared per field, mismatches)."""
    apps = (app,) if isinstance(app, int) else app
    _, ops = decode_file(path)
    mine = ops_by_frame(ops.filter(pl.col("app").is_in(apps)))
    theirs = tshark_fields(path, list(specs))
    exclude = {**retransmissions(path), **(exclude or {})}
    counts = dict.fromkeys(specs, 0)
    bad: list[str] = []
    for frame, fields in theirs.items():
        if frame in exclude:
            continue
        our_ops = mine.get(frame, [])
        for field, spec in specs.items():
            get, norm = spec if isinstance(spec, tuple) else (spec, None)
            want = norm(fields[field]) if norm else fields[field]
            vals = [get(op) for op in our_ops]
            ours = ",".join(_fmt(v) for v in vals if v is not None)
            if norm is _uniq:
                ours = _uniq(ours)
            if ours != want:
                bad.append(f"{path.name} frame {frame} {field}: tshark {want!r} ours {ours!r}")
            elif ours:
                counts[field] += 1
    return counts, bad


def retransmissions(path: Path) -> dict[int, str]:
    """Frames tshark marks as TCP retransmissions: it does not hand their data to the dissector
    again (tcp.analysis), while our stateless decoders decode them once more (a duplicate op with
    the same transaction id). Neither is wrong about the bytes; the duplicate is for sessions to
    drop by sequence number."""
    flags = tshark_fields(path, ["tcp.analysis.retransmission",
                                 "tcp.analysis.spurious_retransmission"])
    return {f: "TCP retransmission" for f, v in flags.items() if any(v.values())}


def field(name: str, when: Callable[[dict], bool] = lambda op: True,
          fmt: Callable[[object], object] = lambda v: v) -> Getter:
    def get(op: dict) -> object:
        v = op[name]
        return None if v is None or not when(op) else fmt(v)
    return get


def hexfmt(width: int) -> Callable[[object], str]:
    return lambda v: f"0x{int(v):0{width}x}"


def check(counts: dict[str, int], bad: list[str], must_compare: tuple[str, ...]) -> None:
    assert not bad, f"{len(bad)} mismatches, first: " + "\n".join(bad[:15])
    for f in must_compare:
        assert counts[f] > 0, f"no frame compared for {f}: {counts}"


# --------------------------------------------------------------------------------------------
# Modbus/TCP
MODBUS_BITS = (1, 2, 15)
MODBUS_WORDS = (3, 4, 16, 23)
MODBUS_SPECS: dict[str, Getter] = {
    "mbtcp.trans_id": field("trans"),
    "mbtcp.unit_id": field("unit"),
    "modbus.func_code": field("code"),
    "modbus.exception_code": field("exception"),
    "modbus.reference_num": field("ref", lambda op: op["code"] != 23),
    "modbus.word_cnt": field("count", lambda op: op["code"] in MODBUS_WORDS and op["code"] != 23),
    # FC 23: ref/count are the read half
    "modbus.read_reference_num": field("ref", lambda op: op["code"] == 23),
    "modbus.read_word_cnt": field("count", lambda op: op["code"] == 23),
    "modbus.bit_cnt": field("count", lambda op: op["code"] in MODBUS_BITS),
    "modbus.mei": field("sub", lambda op: op["code"] == 43),
    "modbus.diagnostic_code": field("sub", lambda op: op["code"] == 8),
}


def test_modbus_mixed() -> None:
    counts, bad = compare(REAL / "modbus_mixed_mb2.pcap", MODBUS_SPECS, APP_MODBUS)
    check(counts, bad, ("mbtcp.trans_id", "mbtcp.unit_id", "modbus.func_code",
                        "modbus.reference_num", "modbus.word_cnt", "modbus.bit_cnt"))
    assert counts["modbus.func_code"] > 2500


# --------------------------------------------------------------------------------------------
# S7comm
def _ud(op: dict) -> bool:
    return op["code"] is not None and op["code"] >= 0x100


def _modetrans(op: dict) -> bool:
    """A mode-transition push: userdata group 0, keyed as pseudo group 0x10 (core/decode/ics.py)."""
    return op["group"] == S7_MODE_TRANSITION


S7_BLOCK_HEX = {"OB": "08", "DB": "0A", "SDB": "0B", "FC": "0C", "SFC": "0D", "FB": "0E", "SFB": "0F"}
S7_SPECS: dict[str, Getter] = {
    "s7comm.header.rosctr": lambda op: (7 if _ud(op) else 1 if op["direction"] == DIR_REQUEST
                                        else 3 if op["code"] is not None else 2),
    "s7comm.header.pduref": field("trans"),
    "s7comm.param.func": field("code", lambda op: not _ud(op), hexfmt(2)),
    "s7comm.param.itemcount": field("count"),
    "s7comm.param.userdata.funcgroup": field("group", fmt=lambda g: 0 if g == S7_MODE_TRANSITION else g),
    "s7comm.param.userdata.subfunc": field("sub", lambda op: not _modetrans(op)),
    "s7comm.param.modetrans.subfunc": field("sub", _modetrans),
    "s7comm.param.userdata.type": lambda op: (
        0 if _modetrans(op) else {DIR_REQUEST: 4, DIR_RESPONSE: 8}.get(op["direction"], 0) if _ud(op) else None),
    "s7comm.data.userdata.szl_id": field("szl_id", fmt=hexfmt(4)),
    "s7comm.param.pistart.servicename": field("service"),
    # block up/download and PI _DELE/_INSE (tshark shows both under blockcontrol)
    "s7comm.data.blockcontrol.block_type": field("block_type", fmt=lambda v: S7_BLOCK_HEX.get(v, v)),
    "s7comm.data.blockcontrol.block_number": field("block_num", fmt=lambda v: f"{v:05d}"),
}
def _first(v: str) -> str:
    return v.split(",")[0]


# We keep the first item of a Read/Write Var; tshark lists every item: compare with its first
# (on frames holding one S7 PDU, see test_s7).
S7_ITEM_SPECS: dict[str, Spec] = {
    "s7comm.param.item.area": (field("area", fmt=hexfmt(2)), _first),
    "s7comm.param.item.db": (field("db"), _first),
    "s7comm.param.item.address": (field("ref", fmt=hexfmt(6)), _first),
}


def s7_exclusions(path: Path) -> dict[int, str]:
    """Frames where tshark reassembles and we do not (we report on the first piece instead):
    a COTP DT fragment (eot 0) carrying data, and the frame completing it (cotp.segment lists
    the fragments); userdata split into data units (s7comm.fragments / last data unit = no).
    Empty EOT=0 fragments (the '02 F0 00' some stacks send before
    each PDU) are harmless: the next frame holds the whole PDU for both decoders."""
    t = tshark_fields(path, ["cotp.eot", "tpkt.length", "cotp.segment", "s7comm.fragments",
                             "s7comm.param.userdata.lastdataunit", "tcp.segments"])
    frags = {f for f, v in t.items()
             if any(e == "0" and int(n) > 7 for e, n in
                    zip(v["cotp.eot"].split(","), v["tpkt.length"].split(","), strict=False) if n)}
    out = dict.fromkeys(frags, "COTP fragment with data")
    for f, v in t.items():
        if v["cotp.segment"] and frags.intersection(int(x) for x in v["cotp.segment"].split(",")):
            out[f] = "COTP reassembly"
        elif v["s7comm.fragments"] or v["s7comm.param.userdata.lastdataunit"] not in ("", "0x00"):
            out[f] = "S7 userdata data-unit reassembly"
    return out  # a TPKT spanning TCP segments is reassembled (core/decode/reassembly.py)


def s7_multi(path: Path) -> dict[int, str]:
    """Frames holding several S7 PDUs: tshark's item list mixes their items (items only)."""
    return {f: "several S7 PDUs" for f, v in tshark_fields(path, ["s7comm.header.rosctr"]).items()
            if "," in v["s7comm.header.rosctr"]}


S7_FILES = ["s7comm_snap7.pcap", "s7comm_diag_read.pcapng", "s7comm_rw_vartab.pcapng",
            "modbus_mixed_mb2.pcap"]


@pytest.mark.parametrize("name", S7_FILES)
def test_s7(name: str) -> None:
    path = REAL / name
    excl = s7_exclusions(path)
    counts, bad = compare(path, S7_SPECS, APP_S7, excl)
    check(counts, bad, ("s7comm.header.rosctr",))
    counts2, bad2 = compare(path, S7_ITEM_SPECS, APP_S7, {**excl, **s7_multi(path)})
    check(counts2, bad2, ())


@pytest.mark.parametrize("name", S7_FILES)
def test_cotp_type(name: str) -> None:
    """cotp_type (per packet) is the type of the segment's first TPKT."""
    path = REAL / name
    packets, _ = decode_file(path)
    ours = {f: t for f, t in packets.filter(pl.col("cotp_type").is_not_null())
            .select("frame", "cotp_type").iter_rows()}
    theirs = _tshark_fields(path, ["cotp.type"], extra=["-o", "tcp.desegment_tcp_streams:FALSE"])
    bad = []
    compared = 0
    for f, v in theirs.items():
        want = v["cotp.type"].split(",")[0]
        got = f"0x{ours[f]:02x}" if f in ours else ""
        if want != got:
            bad.append(f"{name} frame {f}: tshark {want!r} ours {got!r}")
        compared += bool(want)
    assert not bad, bad[:10]
    assert compared > 0


# --------------------------------------------------------------------------------------------
# IEC 60870-5-104
def _drop_s(v: str) -> str:
    """S-format APDUs (acknowledgements) give no op: drop them from tshark's list."""
    return ",".join(x for x in v.split(",") if x and x != "0x00000001")


IEC104_SPECS: dict[str, Spec] = {
    "iec60870_104.type": (lambda op: f"0x{op['group']:08x}", _drop_s),
    "iec60870_104.utype": field("sub", lambda op: op["group"] == 3, hexfmt(8)),
    "iec60870_asdu.typeid": field("code"),
    "iec60870_asdu.causetx": field("sub", lambda op: op["group"] == 0),
    "iec60870_asdu.addr": field("unit"),
}


def test_iec104() -> None:
    path = REAL / "iec104_misc.pcap"
    counts, bad = compare(path, IEC104_SPECS, APP_IEC104)
    check(counts, bad, tuple(IEC104_SPECS))
    # first IOA, on frames holding a single ASDU (tshark lists the IOAs of all ASDUs together)
    _, ops = decode_file(path)
    mine = ops_by_frame(ops.filter((pl.col("app") == APP_IEC104) & (pl.col("group") == 0)))
    n = 0
    for f, v in tshark_fields(path, ["iec60870_asdu.typeid", "iec60870_asdu.ioa"]).items():
        if v["iec60870_asdu.typeid"] and "," not in v["iec60870_asdu.typeid"]:
            assert [op["ref"] for op in mine[f]] == [int(v["iec60870_asdu.ioa"].split(",")[0])], f
            n += 1
    assert n > 50


# --------------------------------------------------------------------------------------------
# DNP3
def _first_group(v: str) -> str:
    """dnp3.al.obj is group << 8 | variation for every object: keep the first one's group."""
    return str(int(v.split(",")[0], 16) >> 8) if v else ""


DNP3_SPECS: dict[str, Spec] = {
    "dnp3.al.func": field("code"),
    "dnp3.al.seq": field("trans"),
    "dnp3.dst": field("unit"),
    # tshark 4.0 does not dissect the object headers of Initialize/Start/Stop Application
    # (16-18); the bytes there are an object header (frames 163-176 carry 3c 02 06 ...), which we
    # report. tshark is the incomplete side, so those functions are left out of this field.
    "dnp3.al.obj": (field("sub", lambda op: op["code"] not in (16, 17, 18)), _first_group),
}


def dnp3_exclusions(path: Path) -> dict[int, str]:
    """Frames with no application header of their own in tshark's view: a fragment spanning
    several DNP3 transport segments is shown on its last segment (we report the first), and link-only
    frames show dnp3.dst without an op on our side (dnp3.dst is compared on op frames only)."""
    t = tshark_fields(path, ["dnp3.tr.fir", "dnp3.tr.fin", "dnp3.al.func", "dnp3.dst",
                             "tcp.segments"])
    out = {}
    for f, v in t.items():
        if "0" in v["dnp3.tr.fin"].split(",") or "0" in v["dnp3.tr.fir"].split(","):
            out[f] = "DNP3 transport reassembly"
        elif v["dnp3.dst"] and not v["dnp3.al.func"]:
            out[f] = "link-only frame (no application layer)"
    return out


def test_dnp3() -> None:
    path = REAL / "dnp3_test_data_part1.pcap"
    counts, bad = compare(path, DNP3_SPECS, APP_DNP3, dnp3_exclusions(path))
    check(counts, bad, tuple(DNP3_SPECS))


# --------------------------------------------------------------------------------------------
# EtherNet/IP + CIP
ENIP_SPECS: dict[str, Spec] = {
    # one value per encapsulation header in tshark, one per CIP message for us: compare the set
    "enip.command": (lambda op: f"0x{(op['code'] if op['sub'] is None else op['sub']):04x}", _uniq),
    "cip.sc": field("code", lambda op: op["sub"] is not None, hexfmt(2)),
    # tshark adds an extra cip.rr for the Connection Manager's Unconnected Send: compare the set
    "cip.rr": (lambda op: None if op["sub"] is None
               else f"0x{int(op['direction'] == DIR_RESPONSE):02x}", _uniq),
}
# tshark fills cip.class of a reply from the matching request; we only know it on requests.
ENIP_REQ_SPECS: dict[str, Spec] = {"cip.class": field("group", fmt=hexfmt(2))}


def test_enip() -> None:
    path = REAL / "modbus_mixed_mb2.pcap"
    excl = {f: "encapsulation spanning TCP segments"
            for f, v in tshark_fields(path, ["tcp.segments", "enip.command"]).items()
            if v["tcp.segments"] and v["enip.command"]}
    counts, bad = compare(path, ENIP_SPECS, APP_ENIP, excl)
    check(counts, bad, tuple(ENIP_SPECS))
    replies = {f for f, v in tshark_fields(path, ["cip.rr"]).items() if "0x01" in v["cip.rr"]}
    counts, bad = compare(path, ENIP_REQ_SPECS, APP_ENIP, {**excl, **dict.fromkeys(replies, "reply")})
    check(counts, bad, ("cip.class",))


# --------------------------------------------------------------------------------------------
# BACnet/IP
BACNET_SPECS: dict[str, Spec] = {
    "bacapp.confirmed_service": field("code", lambda op: op["sub"] == 0),
    "bacapp.unconfirmed_service": field("code", lambda op: op["sub"] == 1),
}


def test_bacnet() -> None:
    path = REAL / "bacnet_sample.pcap"
    counts, bad = compare(path, BACNET_SPECS, APP_BACNET)
    check(counts, bad, tuple(BACNET_SPECS))



# --------------------------------------------------------------------------------------------
# No false positives: an op of protocol X only where tshark sees X, on every capture.
PROTO_OF_APP = {APP_MODBUS: "mbtcp", APP_S7: "s7comm", APP_DNP3: "dnp3", APP_ENIP: "enip",
                APP_IEC104: "iec60870_104", APP_BACNET: "bacapp",
                APP_GOOSE: "goose", APP_PROFINET: "pn_dcp"}  # MMS: tests/test_tshark_61850.py


@pytest.mark.parametrize("path", sorted(REAL.glob("*.pcap*")), ids=lambda p: p.name)
def test_ops_only_where_tshark_sees_the_protocol(path: Path) -> None:
    _, ops = decode_file(path)
    protos = _tshark_fields(path, ["frame.protocols"])
    bad = []
    for app, proto in PROTO_OF_APP.items():
        # retransmissions included: core/decode/retrans.py drops their operations, as tshark
        # does not dissect them again
        for f in set(ops.filter(pl.col("app") == app)["frame"].to_list()):
            if proto not in protos[f]["frame.protocols"].split(":"):
                bad.append(f"{path.name} frame {f}: our {proto} op, tshark {protos[f]}")
    assert not bad, bad[:10]


# --------------------------------------------------------------------------------------------
# Synthetic capture: the reference §3 frames and core/synth/frames.py builders, for what the real
# captures lack (OPC UA, UMAS, FC 43/16/17, PLC stop, download, delete, CIP on UDP, DNP3/UDP).
def _synthetic(path: Path) -> None:
    from plantwatch.core.synth import frames as F
    from plantwatch.core.synth.pcapwriter import write_pcap
    from tests import test_decode_ics as U

    cli, srv = "10.0.0.5", "10.0.0.9"
    mc, ms = "02:00:00:00:00:05", "02:00:00:00:00:09"
    flows: list[tuple[int, int, int, list[tuple[bool, bytes]]]] = [
        (6, 40001, 502, [(True, U.MB_FC3_REQ), (False, U.MB_FC3_RESP), (True, U.MB_FC16_REQ),
                         (False, U.MB_FC16_RESP), (True, U.MB_FC43), (True, U.MB_UMAS),
                         (True, U.MB_FC17), (False, U.MB_EXC),
                         (True, U.MB_FC3_REQ + U.MB_FC16_REQ + U.MB_FC17),
                         (True, U.h("0009 0000 000F 01|17 0010 0002 0020 0002 04 00010002")),
                         (True, U.h("000A 0000 0008 01|16 0004 00F2 0025")),
                         (True, U.h("000B 0000 0006 01|08 0001 FF00")),
                         (False, U.h("000A 0000 0008 01|16 0004 00F2 0025"))]),
        (6, 40002, 102, [(True, U.S7_CR), (False, U.S7_CC), (True, U.S7_SETUP), (True, U.S7_READ),
                         (False, U.S7_READ_ACK), (True, U.S7_WRITE), (True, U.S7_STOP),
                         (True, U.S7_HOT), (True, U.S7_DOWNLOAD), (True, U.S7_DELE),
                         (True, U.S7_SZL), (True, U.S7_READ + U.S7_WRITE + U.S7_SZL),
                         (True, F.s7_start_upload(3, "FC", 12)), (False, F.s7_mode_transition(0, mode=0))]),
        (6, 40003, 20000, [(True, F.dnp3(10, 1, F.dnp3_read_class(3, (1, 2, 3, 0)))),
                           (False, F.dnp3(1, 10, F.dnp3_response_analog(3, list(range(20))),
                                          master=False)),
                           (True, F.dnp3(10, 1, F.dnp3_direct_operate(4, 7)))]),
        (17, 40004, 20000, [(True, F.dnp3(10, 1, F.dnp3_read_class(5)))]),
        (6, 40005, 44818, [(True, F.enip_list_identity()), (True, F.enip_register_session()),
                           (True, F.enip_send_rr_data(1, F.cip_request(0x0E, 0x01, 1, 7))),
                           (False, F.enip_send_rr_data(1, F.cip_response(0x0E, b"\x01\x00"))),
                           (True, F.enip_send_rr_data(1, F.cip_request(0x10, 0x04, 100, 3, b"\x01")))]),
        (17, 40006, 44818, [(True, F.enip_list_identity())]),
        (6, 40007, 2404, [(True, F.IEC104_STARTDT_ACT), (False, F.IEC104_STARTDT_CON),
                          (True, F.iec104_i_frame(0, 0, 100, 6, 10, 0, b"\x14")),
                          (False, F.iec104_i_frame(0, 1, 100, 7, 10, 0, b"\x14")
                           + F.iec104_i_frame(1, 1, 13, 20, 10, 0x123456, b"\x00\x00\x80\x3f\x00")
                           + F.iec104_s_frame(1)),
                          (True, F.IEC104_TESTFR_ACT)]),
        (17, 47808, 47808, [(True, F.bacnet_who_is()), (False, F.bacnet_i_am(1234)),
                            (True, F.bacnet_read_property(7, 0, 1)),
                            (False, F.bacnet_read_property_ack(7, 0, 1, 21.5))]),
        (6, 40008, 4840, [(True, b"HELF" + struct.pack("<I", 32) + struct.pack("<IIIII", 0, 65536, 65536, 0, 0)
                           + struct.pack("<i", -1)),
                          (True, U.opcua_msg(631)), (False, U.opcua_msg(634))]),
    ]
    recs = []
    t = 1_700_000_000_000_000_000
    for proto, cport, sport_, items in flows:
        seq = {True: 1000, False: 5000}
        if proto == 6:  # handshake, so tshark tracks the stream from its start
            recs.append((t, F.tcp_frame(mc, ms, cli, srv, cport, sport_, seq=999, flags=0x02)))
            recs.append((t + 1, F.tcp_frame(ms, mc, srv, cli, sport_, cport, seq=4999, ack=1000,
                                            flags=0x12)))
            t += 2
        for to_srv, pay in items:
            t += 1_000_000
            a, b = (cli, srv) if to_srv else (srv, cli)
            ma, mb = (mc, ms) if to_srv else (ms, mc)
            pa, pb = (cport, sport_) if to_srv else (sport_, cport)
            if proto == 6:
                fr = F.tcp_frame(ma, mb, a, b, pa, pb, pay, seq=seq[to_srv], ack=seq[not to_srv])
                seq[to_srv] += len(pay)
            else:
                fr = F.udp_frame(ma, mb, a, b, pa, pb, pay)
            recs.append((t, fr))
    write_pcap(path, recs)


def test_synthetic_all_protocols(tmp_path: Path) -> None:
    path = tmp_path / "ics_synthetic.pcap"
    _synthetic(path)
    for specs, app, must, excl in (
        (MODBUS_SPECS, APP_MODBUS, ("modbus.mei", "modbus.exception_code", "modbus.word_cnt",
                                    "modbus.read_reference_num", "modbus.read_word_cnt",
                                    "modbus.diagnostic_code"), {}),
        (S7_SPECS, APP_S7, ("s7comm.param.pistart.servicename", "s7comm.data.userdata.szl_id",
                            "s7comm.data.blockcontrol.block_type", "s7comm.param.modetrans.subfunc"), {}),
        (S7_ITEM_SPECS, APP_S7, ("s7comm.param.item.area",), s7_multi(path)),
        (DNP3_SPECS, APP_DNP3, tuple(DNP3_SPECS), {}),
        (ENIP_SPECS, APP_ENIP, tuple(ENIP_SPECS), {}),
        (IEC104_SPECS, APP_IEC104, tuple(IEC104_SPECS), {}),
        (BACNET_SPECS, APP_BACNET, tuple(BACNET_SPECS), {}),
        (OPCUA_SPECS, APP_OPCUA, tuple(OPCUA_SPECS), {}),
    ):
        counts, bad = compare(path, specs, app, excl)
        check(counts, bad, must)


OPCUA_SPECS: dict[str, Spec] = {
    "opcua.transport.type": field("service"),
    "opcua.servicenodeid.numeric": field("code"),
}

# Every field read from tshark, in one run per file (tshark_fields caches it).
ALL_FIELDS = sorted(
    {f for specs in (MODBUS_SPECS, S7_SPECS, S7_ITEM_SPECS, IEC104_SPECS, DNP3_SPECS, ENIP_SPECS,
                     ENIP_REQ_SPECS, BACNET_SPECS, OPCUA_SPECS) for f in specs}
    | {"s7comm.header.rosctr", "tcp.analysis.retransmission", "tcp.analysis.spurious_retransmission", "cotp.eot",
       "tpkt.length", "cotp.segment", "s7comm.fragments", "s7comm.param.userdata.lastdataunit",
       "tcp.segments", "iec60870_asdu.ioa", "dnp3.tr.fir", "dnp3.tr.fin"}
)
