"""Unit tests of the ICS application decoders on byte-exact frames.

The hex frames are those of shared/reference/ics-operations.md §3 (each decodes cleanly in
tshark 4.0.17), a few real frames taken from tests/data/real, and builders of core/synth/frames.py.
"""

from __future__ import annotations

import random
import struct

import numpy as np
import polars as pl
import pytest

from plantwatch.core.decode import bacnet, dnp3, enip, ics, iec104, modbus, opcua, s7
from plantwatch.core.decode.schema import (
    APP_BACNET,
    APP_DNP3,
    APP_ENIP,
    APP_IEC104,
    APP_MODBUS,
    APP_OPCUA,
    APP_S7,
    APP_S7PLUS,
    CLS_ACTION,
    CLS_DISCOVER,
    CLS_NONE,
    CLS_READ,
    CLS_REPROGRAM,
    DIR_OTHER,
    DIR_REQUEST,
    DIR_RESPONSE,
    OPS,
)
from plantwatch.core.decode.view import PacketView
from plantwatch.core.synth import frames as F


def h(s: str) -> bytes:
    """Hex with '|' and spaces as separators, and "quoted" ASCII."""
    out = b""
    for i, part in enumerate(s.split('"')):
        out += part.encode("ascii") if i % 2 else bytes.fromhex(part.replace("|", "").replace(" ", ""))
    return out


def run(mod, payloads: list[bytes], *, proto: int = 6, sport: int = 50000, dport: int = 502,
        state: dict | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    view = PacketView.from_payloads(payloads, proto=proto, sport=sport, dport=dport)
    st = {} if state is None else state
    rows = mod.select(view, st)
    res = mod.decode(view, rows, st)
    cols = res.columns if res.columns is not None else pl.DataFrame()
    ops = res.ops if res.ops is not None else pl.DataFrame(schema={"row": pl.Int64(), **OPS})
    return cols, ops


def one(ops: pl.DataFrame) -> dict:
    assert ops.height == 1, ops
    return ops.row(0, named=True)


def check(op: dict, **want: object) -> None:
    got = {k: op[k] for k in want}
    assert got == want


# ------------------------------------------------------------------------------------ Modbus
MB_FC3_REQ = h("0001 0000 0006 01|03 0000 000A")
MB_FC3_RESP = h("0001 0000 0017 01|03 14") + bytes(range(20))
MB_FC16_REQ = h("0002 0000 000B 01|10 0010 0002 04 000A 0102")
MB_FC16_RESP = h("0002 0000 0006 01|10 0010 0002")
MB_FC43 = h("0003 0000 0005 01|2B 0E 01 00")
MB_UMAS = h("0004 0000 0004 00|5A 00 02")
MB_FC17 = h("0005 0000 0002 01|11")
MB_EXC = h("0006 0000 0003 01|83 02")


def test_modbus_read_request() -> None:
    cols, ops = run(modbus, [MB_FC3_REQ])
    check(one(ops), row=0, app=APP_MODBUS, direction=DIR_REQUEST, trans=1, unit=1, code=3, ref=0,
          count=10, exception=None, cls=CLS_READ, name="Read Holding Registers")
    assert cols["app"].to_list() == [APP_MODBUS]


def test_modbus_responses_by_port() -> None:
    _, ops = run(modbus, [MB_FC3_RESP, MB_FC16_RESP, MB_EXC], sport=502, dport=50000)
    r = ops.to_dicts()
    check(r[0], direction=DIR_RESPONSE, code=3, ref=None, count=None, cls=CLS_READ)
    check(r[1], direction=DIR_RESPONSE, code=16, ref=16, count=2, cls=CLS_ACTION)
    check(r[2], direction=DIR_RESPONSE, code=3, exception=2, trans=6)


def test_modbus_write_discover_umas() -> None:
    _, ops = run(modbus, [MB_FC16_REQ, MB_FC43, MB_UMAS, MB_FC17])
    r = ops.to_dicts()
    check(r[0], code=16, ref=16, count=2, cls=CLS_ACTION, name="Write Multiple Registers")
    check(r[1], code=43, sub=14, cls=CLS_DISCOVER, name="Read Device Identification")
    check(r[2], code=90, sub=2, unit=0, cls=CLS_DISCOVER, name="UMAS Read ID")
    check(r[3], code=17, cls=CLS_DISCOVER)


def test_modbus_several_adus_in_one_segment() -> None:
    _, ops = run(modbus, [MB_FC3_REQ + MB_FC16_REQ + MB_FC17, MB_FC3_REQ])
    assert ops.select("row", "trans", "code").rows() == [(0, 1, 3), (0, 2, 16), (0, 5, 17), (1, 1, 3)]


def test_modbus_diagnostics_subfunction() -> None:
    _, ops = run(modbus, [h("0007 0000 0006 01|08 0001 0000"), h("0008 0000 0006 01|08 0000 1234")])
    r = ops.to_dicts()
    check(r[0], code=8, sub=1, cls=CLS_ACTION)
    check(r[1], code=8, sub=0, cls=CLS_READ)


def test_modbus_frames_builders() -> None:
    _, ops = run(modbus, [F.modbus(9, 3, F.mb_write_coils(100, [True] * 10))])
    check(one(ops), trans=9, unit=3, code=15, ref=100, count=10, cls=CLS_ACTION)


# ------------------------------------------------------------------------------------ S7comm
S7_CR = h("0300 0016|11 E0 0000 0001 00|C0010A C1020100 C2020102")
S7_CC = h("0300 0016|11 D0 0001 0002 00|C0010A C1020100 C2020102")
S7_SETUP = h("0300 0019|02F080|32 01 0000 0000 0008 0000|F0 00 0001 0001 01E0")
S7_READ = h("0300 001F|02F080|32 01 0000 0001 000E 0000|04 01|12 0A 10 02 000A 0001 84 000000")
S7_READ_ACK = h("0300 0023|02F080|32 03 0000 0001 0002 000E 0000|04 01|FF 04 0050") + bytes(10)
S7_WRITE = h("0300 0025|02F080|32 01 0000 0002 000E 0006|05 01 12 0A 10 02 0002 0001 84 000000|00 04 0010 1234")
S7_STOP = h('0300 0021|02F080|32 01 0000 000E 0010 0000|29 0000000000 09 "P_PROGRAM"')
S7_HOT = h('0300 0025|02F080|32 01 0000 000C 0014 0000|28 000000000000FD 0000 09 "P_PROGRAM"')
S7_DOWNLOAD = h('0300 0031|02F080|32 01 0000 0010 0020 0000|1A 00 0000 00000000 09 "_0800001P" 0D "1" "000104" "000060"')
S7_DELE = h('0300 002B|02F080|32 01 0000 0011 001A 0000|28 000000000000FD 000A 01 00 "0800001" "B" 05 "_DELE"')
S7_SZL = h("0300 0021|02F080|32 07 0000 0005 0008 0008|000112 04 11 44 01 00|FF 09 0004 0011 0000")


def test_s7_cotp_connect_has_type_and_no_op() -> None:
    cols, ops = run(s7, [S7_CR, S7_CC], dport=102)
    assert cols.sort("row")["cotp_type"].to_list() == [0x0E, 0x0D]
    assert cols["app"].to_list() == [APP_S7, APP_S7]
    assert ops.height == 0


def test_s7_read_write_setup() -> None:
    cols, ops = run(s7, [S7_SETUP, S7_READ, S7_WRITE], dport=102)
    assert cols["cotp_type"].to_list() == [0x0F] * 3
    r = ops.to_dicts()
    check(r[0], code=0xF0, direction=DIR_REQUEST, cls=CLS_NONE, name="Setup Communication")
    check(r[1], code=4, trans=1, count=1, db=1, area=0x84, ref=0, cls=CLS_READ, name="Read Var")
    check(r[2], code=5, trans=2, count=1, db=1, area=0x84, ref=0, cls=CLS_ACTION, name="Write Var")


def test_s7_read_ack() -> None:
    _, ops = run(s7, [S7_READ_ACK], sport=102, dport=50000)
    check(one(ops), code=4, direction=DIR_RESPONSE, trans=1, count=1, db=None, exception=None,
          cls=CLS_READ)


def test_s7_stop_start_download_delete() -> None:
    _, ops = run(s7, [S7_STOP, S7_HOT, S7_DOWNLOAD, S7_DELE], dport=102)
    r = ops.to_dicts()
    check(r[0], code=0x29, service="P_PROGRAM", cls=CLS_ACTION, name="PLC Stop")
    check(r[1], code=0x28, service="P_PROGRAM", cls=CLS_ACTION, name="PLC Start (P_PROGRAM)")
    check(r[2], code=0x1A, block_type="OB", block_num=1, cls=CLS_REPROGRAM, name="Request Download")
    check(r[3], code=0x28, service="_DELE", block_type="OB", block_num=1, cls=CLS_REPROGRAM)


def test_s7_userdata_read_szl() -> None:
    _, ops = run(s7, [S7_SZL], dport=102)
    check(one(ops), code=0x401, group=4, sub=1, szl_id=0x0011, direction=DIR_REQUEST, trans=5,
          cls=CLS_DISCOVER, name="Read SZL")


def test_s7_several_tpkts_in_one_segment() -> None:
    cols, ops = run(s7, [S7_READ + S7_WRITE + S7_SZL], dport=102)
    assert ops["code"].to_list() == [4, 5, 0x401]
    assert cols["cotp_type"].to_list() == [0x0F]


def test_s7_frames_builders() -> None:
    pay = [F.s7_start_upload(3, "FC", 12), F.s7_pi_service(4, "_INSE")]
    _, ops = run(s7, pay, dport=102)
    r = ops.to_dicts()
    check(r[0], code=0x1D, block_type="FC", block_num=12, cls=CLS_REPROGRAM)
    check(r[1], code=0x28, service="_INSE", cls=CLS_REPROGRAM)


def test_s7_userdata_fragments_state() -> None:
    """A userdata answer in data units: the SZL id is read from the first unit only."""
    first = h("030000f702f080320700000200000c00da0001120812840102d5010000ff0900d6001c0000")
    first += bytes(0xF7 - len(first))
    follow = h("030000a702f080320700000300000c008a0001120812840102d5000000ff0900864d4d43")
    follow += bytes(0xA7 - len(follow))
    st: dict = {}
    _, ops = run(s7, [first, follow], sport=102, dport=50000, state=st)
    assert ops["szl_id"].to_list() == [0x001C, None]
    assert ops["direction"].to_list() == [DIR_RESPONSE, DIR_RESPONSE]
    assert st["ud_open"] == set()


def test_s7plus_recognised() -> None:
    pdu = h("72 01 0012|31 0000 054C 0000 0001") + bytes(12)
    seg = h("0300") + struct.pack(">H", 7 + len(pdu)) + h("02F080") + pdu
    cols, ops = run(s7, [seg], dport=102)
    assert cols["app"].to_list() == [APP_S7PLUS]
    check(one(ops), app=APP_S7PLUS, code=0x054C, sub=0x31, direction=DIR_REQUEST, cls=CLS_READ,
          name="GetMultiVariables")


# ------------------------------------------------------------------------------------ DNP3
def test_dnp3_read_class_and_operate() -> None:
    pay = [F.dnp3(10, 1, F.dnp3_read_class(3, (1, 2, 3, 0))),
           F.dnp3(10, 1, F.dnp3_direct_operate(4, 7))]
    _, ops = run(dnp3, pay, dport=20000)
    r = ops.to_dicts()
    check(r[0], app=APP_DNP3, code=1, sub=60, unit=10, trans=3, direction=DIR_REQUEST, cls=CLS_READ)
    check(r[1], code=5, sub=12, trans=4, cls=CLS_ACTION, name="Direct Operate")


def test_dnp3_response_object_after_iin_and_crc() -> None:
    """Responses carry IIN before the objects; a long fragment crosses CRC blocks."""
    frame = F.dnp3(1, 10, F.dnp3_response_analog(5, list(range(20))), master=False)
    _, ops = run(dnp3, [frame], sport=20000, dport=50000)
    check(one(ops), code=129, sub=30, unit=1, trans=5, direction=DIR_RESPONSE, cls=CLS_READ)


def test_dnp3_real_stop_application_and_two_frames_per_segment() -> None:
    stop = h("056411c4040003004eefc1c1123c02060107063c04ed8763")  # dnp3_test_data_part1 frame 163
    _, ops = run(dnp3, [stop, stop + F.dnp3(4, 3, bytes([0xC2, 13]))], dport=20000)
    assert ops.select("row", "code", "unit", "sub").rows() == [
        (0, 18, 4, 60), (1, 18, 4, 60), (1, 13, 4, None)]
    assert ops["name"].to_list()[-1] == "Cold Restart"


def test_dnp3_device_attributes_is_discover() -> None:
    app = bytes([0xC1, 1, 0, 0xF8, 0x06])  # READ group 0 var 248 all
    _, ops = run(dnp3, [F.dnp3(4, 3, app)], dport=20000)
    check(one(ops), code=1, sub=0, cls=CLS_DISCOVER)


def test_dnp3_link_only_frame_no_op() -> None:
    hdr = struct.pack("<BBBBHH", 5, 0x64, 5, 0xC9, 4, 3)
    cols, ops = run(dnp3, [hdr + b"\x00\x00"], dport=20000)
    assert cols["app"].to_list() == [APP_DNP3]
    assert ops.height == 0


# ------------------------------------------------------------------------------------ ENIP
def test_enip_list_identity_and_register() -> None:
    _, ops = run(enip, [F.enip_list_identity(), F.enip_register_session()], dport=44818)
    r = ops.to_dicts()
    check(r[0], app=APP_ENIP, code=0x63, sub=None, cls=CLS_DISCOVER, name="List Identity")
    check(r[1], code=0x65, cls=CLS_NONE)


def test_enip_cip_services() -> None:
    pay = [F.enip_send_rr_data(1, F.cip_request(0x0E, 0x01, 1, 7)),
           F.enip_send_rr_data(1, F.cip_request(0x10, 0x04, 100, 3, b"\x01")),
           F.enip_send_rr_data(1, F.cip_request(0x4C, 0x37, 1))]
    _, ops = run(enip, pay, dport=44818)
    r = ops.to_dicts()
    check(r[0], code=0x0E, group=0x01, sub=0x6F, direction=DIR_REQUEST, cls=CLS_DISCOVER)
    check(r[1], code=0x10, group=0x04, cls=CLS_ACTION, name="Set Attribute Single")
    check(r[2], code=0x4C, group=0x37, cls=CLS_REPROGRAM, name="File: Initiate Download")


def test_enip_reply_status() -> None:
    _, ops = run(enip, [F.enip_send_rr_data(1, F.cip_response(0x0E, b"\x00", status=0x08))],
                 sport=44818, dport=50000)
    check(one(ops), code=0x0E, direction=DIR_RESPONSE, exception=8, group=None)


def test_enip_real_unconnected_send_and_multiple_service() -> None:
    # modbus_mixed_mb2 frames 237 (Unconnected Send -> Get_Attributes_All class 0xAC) and 59
    # (connected Multiple Service Packet with one Read Tag)
    ucs = h("6f0026000001021000000000b0e330000000000000000000000000001400020000000000b200160052022006"
            "240107e90800010220ac2401010001000100")
    msp = h("70002c000001021000000000aee330000000000000000000000000000a000200a100040001033500b10018"
            "007ed70a0220022401010004004c022072240068a207000900")
    _, ops = run(enip, [ucs, msp], dport=44818)
    assert ops.select("row", "code", "group", "sub").rows() == [
        (0, 0x52, 0x06, 0x6F), (0, 0x01, 0xAC, 0x6F), (1, 0x0A, 0x02, 0x70), (1, 0x4C, 0x72, 0x70)]
    assert ops["cls"].to_list() == [CLS_NONE, CLS_READ, CLS_NONE, CLS_READ]


# ------------------------------------------------------------------------------------ IEC 104
def test_iec104_interrogation_and_u_frames() -> None:
    gi = F.iec104_i_frame(0, 0, 100, 6, 10, 0, b"\x14")
    _, ops = run(iec104, [F.IEC104_STARTDT_ACT, gi, F.iec104_s_frame(1)], dport=2404)
    r = ops.to_dicts()
    assert len(r) == 2  # the S-frame gives no op
    check(r[0], app=APP_IEC104, group=3, code=None, sub=0x01, direction=DIR_REQUEST, name="STARTDT act")
    check(r[1], group=0, code=100, sub=6, unit=10, ref=0, trans=0, direction=DIR_REQUEST,
          cls=CLS_DISCOVER)


def test_iec104_several_apdus_per_segment() -> None:
    seg = (F.iec104_i_frame(5, 2, 45, 6, 7, 3000, b"\x01") + F.iec104_s_frame(3)
           + F.iec104_i_frame(6, 2, 13, 3, 7, 0x123456, b"\x00\x00\x80\x3f\x00")
           + F.IEC104_TESTFR_CON)
    cols, ops = run(iec104, [seg, F.IEC104_TESTFR_ACT], sport=2404, dport=40000)
    assert ops.select("row", "group", "code", "sub", "ref", "trans").rows() == [
        (0, 0, 45, 6, 3000, 5), (0, 0, 13, 3, 0x123456, 6), (0, 3, None, 0x20, None, None),
        (1, 3, None, 0x10, None, None)]
    assert ops["cls"].to_list()[:2] == [CLS_ACTION, CLS_READ]
    assert ops["direction"].to_list()[:2] == [DIR_REQUEST, DIR_OTHER]
    assert sorted(cols["row"].to_list()) == [0, 1]


def test_iec104_apdu_cut_by_segment_end() -> None:
    i = F.iec104_i_frame(1, 0, 100, 6, 1, 0, b"\x14")
    _, ops = run(iec104, [i + i[:7]], dport=2404)
    assert ops.height == 1


# ------------------------------------------------------------------------------------ BACnet
def test_bacnet_services() -> None:
    pay = [F.bacnet_who_is(), F.bacnet_i_am(1234), F.bacnet_read_property(7, 0, 1)]
    _, ops = run(bacnet, pay, proto=17, sport=47808, dport=47808)
    r = ops.to_dicts()
    check(r[0], app=APP_BACNET, code=8, sub=1, direction=DIR_REQUEST, cls=CLS_DISCOVER, name="who-Is")
    check(r[1], code=0, sub=1, direction=DIR_RESPONSE, name="i-Am")
    check(r[2], code=12, sub=0, direction=DIR_REQUEST, cls=CLS_READ, name="readProperty")


def test_bacnet_ack_routed_and_segmented() -> None:
    ack = F.bacnet_read_property_ack(7, 0, 1, 21.5)
    # routed: SNET 5, SLEN 1, SADR 0x22; write-property (15), confirmed, unsegmented
    routed = F._bvlc(0x0A, h("01 08 0005 01 22|00 05 09 0F 0C00000001 1955"))
    seg = F._bvlc(0x0A, h("01 00|3C 11 00 04 0C 0C00000001"))  # complex ACK, segmented
    netmsg = F._bvlc(0x0B, h("01 80 00 0005"))  # Who-Is-Router-To-Network
    fwd = F._bvlc(0x04, h("C0A80001BAC0|01 00|10 08"))  # Forwarded-NPDU with Who-Is
    _, ops = run(bacnet, [ack, routed, seg, netmsg, fwd], proto=17, sport=47808, dport=47808)
    assert ops.select("row", "code", "sub", "direction").rows() == [
        (0, 12, 0, DIR_RESPONSE), (1, 15, 0, DIR_REQUEST), (2, 12, 0, DIR_RESPONSE),
        (4, 8, 1, DIR_REQUEST)]
    assert ops["cls"].to_list()[1] == CLS_ACTION


# ------------------------------------------------------------------------------------ OPC UA
def opcua_msg(node: int) -> bytes:
    body = struct.pack("<IIII", 1, 1, 51, 1) + struct.pack("<BBH", 1, 0, node) + bytes(20)
    return b"MSGF" + struct.pack("<I", 8 + len(body)) + body


def test_opcua_types_and_services() -> None:
    hel = b"HELF" + struct.pack("<I", 28) + bytes(20)
    pay = [hel, opcua_msg(631), opcua_msg(634) + opcua_msg(673), opcua_msg(9999)]
    cols, ops = run(opcua, pay, dport=4840)
    assert ops.select("row", "service", "code", "direction").rows() == [
        (0, "HEL", None, DIR_REQUEST), (1, "MSG", 631, DIR_REQUEST),
        (2, "MSG", 634, DIR_RESPONSE), (2, "MSG", 673, DIR_REQUEST), (3, "MSG", None, DIR_OTHER)]
    assert ops["cls"].to_list() == [CLS_NONE, CLS_READ, CLS_NONE, CLS_ACTION, CLS_NONE]
    assert ops["name"].to_list()[:3] == ["HEL", "Read", "Read Response"]
    assert set(cols["app"].to_list()) == {APP_OPCUA}


# ------------------------------------------------------------------------------------ robustness
ALL_CASES = [
    (modbus, 6, 502, [MB_FC3_REQ, MB_FC16_REQ, MB_FC43, MB_UMAS, MB_EXC]),
    (s7, 6, 102, [S7_CR, S7_SETUP, S7_READ, S7_WRITE, S7_STOP, S7_HOT, S7_DOWNLOAD, S7_DELE, S7_SZL]),
    (dnp3, 6, 20000, [F.dnp3(1, 2, F.dnp3_response_analog(1, [1, 2, 3]), master=False)]),
    (enip, 6, 44818, [F.enip_send_rr_data(1, F.cip_request(0x52, 0x06, 1, None,
                                                           b"\x07\xe9\x06\x00\x0e\x02\x20\x01\x24\x01"))]),
    (iec104, 6, 2404, [F.iec104_i_frame(0, 0, 100, 6, 10, 0, b"\x14") * 2]),
    (bacnet, 17, 47808, [F.bacnet_read_property(7, 0, 1), F._bvlc(0x0A, h("01 28 0005 01 22 0006 02 3344 05|00 05 09 0F"))]),
    (opcua, 6, 4840, [opcua_msg(631)]),
]


@pytest.mark.parametrize("mod,proto,port,frames", ALL_CASES, ids=lambda x: getattr(x, "__name__", ""))
def test_truncated_and_garbage_never_raise(mod, proto: int, port: int, frames: list[bytes]) -> None:
    rng = random.Random(port)
    payloads: list[bytes] = []
    for fr in frames:
        payloads += [fr[:k] for k in range(1, len(fr))]
        for _ in range(30):  # flip bytes
            b = bytearray(fr)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            payloads.append(bytes(b))
    payloads += [bytes(rng.randrange(256) for _ in range(rng.randint(1, 80))) for _ in range(200)]
    payloads += [fr[:2] + b"\xff\xff" + fr[4:] for fr in frames]  # absurd lengths
    for sport, dport in ((50000, port), (port, 50000)):
        cols, ops = run(mod, payloads, proto=proto, sport=sport, dport=dport)
        assert ops.height == 0 or ops["row"].max() < len(payloads)
        assert set(OPS) - {"file_id", "frame"} <= set(ops.columns)


def test_selects_ignore_other_ports() -> None:
    view = PacketView.from_payloads([MB_FC3_REQ, S7_READ], dport=8080)
    for mod in (modbus, s7, dnp3, enip, iec104, bacnet, opcua):
        assert mod.select(view, {}).size == 0


# ------------------------------------------------------------------------------------ taxonomy
def test_classify_ops_frame_keys_and_tables() -> None:
    df = ics.ops_frame(None, [
        {"row": 0, "app": APP_MODBUS, "code": 90, "sub": 0x41},
        {"row": 1, "app": APP_S7, "code": 0x28, "service": "_GARB"},
        {"row": 2, "app": APP_S7, "code": (1 << 8) | 0x0C, "group": 1, "sub": 0x0C},
        {"row": 3, "app": APP_DNP3, "code": 25},
        {"row": 4, "app": APP_IEC104, "group": 0, "code": 122, "sub": 13},
        {"row": 5, "app": APP_BACNET, "code": 20, "sub": 0},
        {"row": 6, "app": APP_OPCUA, "code": 488},
        {"row": 7, "app": APP_ENIP, "code": 0x4C, "group": 0x6B, "sub": 0x70},
        {"row": 8, "app": APP_MODBUS, "code": 99},
    ])
    assert df["cls"].to_list() == [CLS_ACTION, CLS_ACTION, CLS_ACTION, CLS_REPROGRAM,
                                   CLS_REPROGRAM, CLS_ACTION, CLS_REPROGRAM, CLS_READ, CLS_NONE]
    assert df["name"].to_list()[0] == "UMAS Stop PLC"
    assert df["name"].to_list()[-1] == "Function 99"
    assert df.schema["cls"] == OPS["cls"] and df.schema["name"] == OPS["name"]


def test_ics_ports() -> None:
    assert {502, 102, 20000, 44818, 2404, 4840} <= ics.ICS_TCP_PORTS
    assert {47808, 2222, 20000, 44818} <= ics.ICS_UDP_PORTS
    assert ics.ICS_PORTS == ics.ICS_TCP_PORTS | ics.ICS_UDP_PORTS
    assert set(ics.APP_PORTS) <= ics.ICS_APPS


def test_ics_ports_and_apps_live_in_one_place() -> None:
    """Sessions, the inventory and the models use the very objects of core/decode/ics.py."""
    from plantwatch.core.detection import detector
    from plantwatch.core.detection.models import failed_ics, ics_protocol
    from plantwatch.core.flows import sessions
    from plantwatch.core.inventory import devices, edges
    assert sessions.ICS_PORTS is ics.ICS_PORTS and edges.ICS_PORTS is ics.ICS_PORTS
    assert devices.ICS_APPS is ics.ICS_APPS and detector.ICS_APPS is ics.ICS_APPS
    assert failed_ics.ICS_PORTS is ics.ICS_PORTS and ics_protocol.APP_PORTS is ics.APP_PORTS


def test_vectorised_matches_walk_on_modbus() -> None:
    """The vectorised fast path and the per-packet walk agree (same fields, same rows)."""
    pays = [MB_FC3_REQ, MB_FC16_REQ, MB_EXC, F.modbus(3, 1, F.mb_read_req(1, 7, 9))]
    _, fast = run(modbus, pays)
    _, slow = run(modbus, [b"".join(pays)])
    cols = ["trans", "unit", "code", "ref", "count", "exception", "cls", "name"]
    assert fast.select(cols).rows() == slow.select(cols).rows()
    assert np.array_equal(fast["row"].to_numpy(), np.arange(4))


def test_vectorised_matches_walk_on_s7() -> None:
    pays = [S7_SETUP, S7_READ, S7_WRITE, S7_READ_ACK]
    _, fast = run(s7, pays, dport=102)
    _, slow = run(s7, [b"".join(pays)], dport=102)
    cols = ["code", "trans", "count", "db", "area", "ref", "exception", "cls", "name"]
    assert fast.select(cols).rows() == slow.select(cols).rows()


def test_vectorised_matches_walk_on_enip() -> None:
    pays = [F.enip_list_identity(), F.enip_send_rr_data(1, F.cip_request(0x0E, 0x01, 1, 7)),
            F.enip_send_rr_data(1, F.cip_response(0x0E, b"\x00", status=0x08)),
            F.enip_send_rr_data(1, F.cip_request(0x4C, 0x37, 1))]
    _, fast = run(enip, pays, dport=44818)
    _, slow = run(enip, [b"".join(pays)], dport=44818)
    cols = ["code", "sub", "group", "direction", "exception", "cls", "name"]
    assert fast.height == 4
    assert fast.select(cols).rows() == slow.select(cols).rows()


def test_arp_opcode_above_32767_decodes(tmp_path) -> None:
    """ARP's opcode is 16 bits unsigned: 0x8001 from the wire (found by tests/test_fuzz.py) is a
    value, not a crash."""
    from plantwatch.core.capture.files import read_batches
    from plantwatch.core.decode import Decoder
    from plantwatch.core.synth import frames as F
    from plantwatch.core.synth.pcapwriter import write_pcap

    arp = bytes.fromhex("0001 0800 06 04 8001 020000000001 0a000001 000000000000 0a000002".replace(" ", ""))
    write_pcap(tmp_path / "arp.pcap", [(0, F.ether("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:01", 0x0806, arp))])
    (b,) = read_batches([str(tmp_path / "arp.pcap")])
    assert Decoder().decode(b).packets["arp_op"].to_list() == [0x8001]
