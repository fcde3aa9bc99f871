"""Field and SCADA protocols: DNP3, EtherNet/IP + CIP, IEC 60870-5-104, BACnet/IP."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from plantwatch.core.synth.frames.wire import (
    Addr,
    _ip,
)

# --------------------------------------------------------------------------- DNP3

DNP3_PORT = 20000


def _dnp_crc(data: bytes) -> bytes:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
    return struct.pack("<H", ~crc & 0xFFFF)


def dnp3(dst: int, src: int, app: bytes, *, master: bool = True, transport_seq: int = 0) -> bytes:
    """Link frame (unconfirmed user data) + transport header (FIR|FIN) + application fragment,
    with a CRC after the header and after every 16 data bytes."""
    user = bytes([0xC0 | (transport_seq & 0x3F)]) + app
    ctrl = 0xC4 if master else 0x44
    hdr = struct.pack("<BBBBHH", 0x05, 0x64, 5 + len(user), ctrl, dst, src)
    out = [hdr, _dnp_crc(hdr)]
    for i in range(0, len(user), 16):
        block = user[i : i + 16]
        out += [block, _dnp_crc(block)]
    return b"".join(out)


def dnp3_read_class(seq: int = 0, classes: Iterable[int] = (0,)) -> bytes:
    """Application request: READ (1) of class data objects (group 60 var 1 = class 0 ...)."""
    objs = b"".join(struct.pack("BBB", 60, c + 1, 0x06) for c in classes)
    return bytes([0xC0 | (seq & 0x0F), 1]) + objs


def dnp3_response_analog(seq: int, values: Sequence[int], iin: int = 0) -> bytes:
    """Application RESPONSE (129): group 30 var 2 (16-bit analog with flag), indexes 0..n-1."""
    objs = struct.pack("BBBBB", 30, 2, 0x00, 0, len(values) - 1)
    objs += b"".join(struct.pack("<Bh", 0x01, v) for v in values)
    return bytes([0xC0 | (seq & 0x0F), 129]) + struct.pack("<H", iin) + objs


def dnp3_direct_operate(seq: int, index: int, code: int = 0x03) -> bytes:
    """DIRECT_OPERATE (5) of a CROB (group 12 var 1) at one index (code 3 latch on)."""
    crob = struct.pack("<BBIIB", code, 1, 1000, 0, 0)
    return bytes([0xC0 | (seq & 0x0F), 5]) + struct.pack("<BBBHH", 12, 1, 0x28, 1, index) + crob


def dnp3_app(seq: int, func: int, objs: bytes = b"", *, con: bool = False, uns: bool = False) -> bytes:
    """An application request fragment (FIR|FIN, optional CON and UNS) of function `func`."""
    return bytes([0xC0 | (0x20 if con else 0) | (0x10 if uns else 0) | (seq & 0x0F), func]) + objs


def dnp3_response(seq: int, objs: bytes = b"", *, iin: int = 0, unsolicited: bool = False) -> bytes:
    """RESPONSE (129), or UNSOLICITED RESPONSE (130, with CON and UNS set), carrying `objs`."""
    if unsolicited:
        return bytes([0xF0 | (seq & 0x0F), 130]) + struct.pack("<H", iin) + objs
    return bytes([0xC0 | (seq & 0x0F), 129]) + struct.pack("<H", iin) + objs


def dnp3_confirm(seq: int, unsolicited: bool = False) -> bytes:
    """CONFIRM (0) of a response (UNS set when it confirms an unsolicited one)."""
    return bytes([0xC0 | (0x10 if unsolicited else 0) | (seq & 0x0F), 0])


def dnp3_analog_events(events: Sequence[tuple[int, int]]) -> bytes:
    """Group 32 var 1 (32-bit analog change events with flag), 1-byte count and index prefix."""
    return struct.pack("BBBB", 32, 1, 0x17, len(events)) + b"".join(
        struct.pack("<BBi", index, 0x01, value) for index, value in events)


def dnp3_binary_events(events: Sequence[tuple[int, bool]]) -> bytes:
    """Group 2 var 1 (binary input change events without time), 1-byte count and index prefix."""
    return struct.pack("BBBB", 2, 1, 0x17, len(events)) + b"".join(
        struct.pack("BB", index, 0x81 if on else 0x01) for index, on in events)


def dnp3_crob(index: int, code: int = 0x03) -> bytes:
    """The object part of an operate: group 12 var 1 (CROB) at one index, 2-byte count and index."""
    return struct.pack("<BBBHH", 12, 1, 0x28, 1, index) + struct.pack("<BBIIB", code, 1, 1000, 0, 0)


def dnp3_time_delay(ms: int) -> bytes:
    """Group 52 var 2 (time delay fine), the answer to a restart."""
    return struct.pack("<BBBBH", 52, 2, 0x07, 1, ms)


def dnp3_all_attributes() -> bytes:
    """Group 0 var 254 (all device attributes), no range: what a device-identity read asks."""
    return struct.pack("BBB", 0, 254, 0x06)


def _dnp3_free(group: int, var: int, obj: bytes) -> bytes:
    """One free-format object (qualifier 0x5B: 1-byte count, 2-byte object size)."""
    return struct.pack("<BBBBH", group, var, 0x5B, 1, len(obj)) + obj


def dnp3_file_open(name: str, size: int, request_id: int, created_ms: int = 0) -> bytes:
    """Group 70 var 3 (file command) opening `name` for writing."""
    raw = name.encode("ascii")
    obj = (struct.pack("<HH", 26, len(raw)) + created_ms.to_bytes(6, "little")
           + struct.pack("<HIIHHH", 0o644, 0, size, 2, 1024, request_id) + raw)
    return _dnp3_free(70, 3, obj)


def dnp3_file_status(handle: int, size: int, request_id: int, status: int = 0) -> bytes:
    """Group 70 var 4 (file command status): the answer to an open, and a close's request."""
    return _dnp3_free(70, 4, struct.pack("<IIHHB", handle, size, 1024, request_id, status))


def dnp3_file_transport(handle: int, block: int, data: bytes, last: bool) -> bytes:
    """Group 70 var 5 (file transport): one block of a file written to the outstation."""
    return _dnp3_free(70, 5, struct.pack("<II", handle, block | (0x80000000 if last else 0)) + data)


def dnp3_file_transport_status(handle: int, block: int, last: bool) -> bytes:
    """Group 70 var 6 (file transport status): the outstation's acknowledgement of a block."""
    return _dnp3_free(70, 6, struct.pack("<IIB", handle, block | (0x80000000 if last else 0), 0))


# --------------------------------------------------------------------------- EtherNet/IP + CIP

ENIP_PORT = 44818


def enip(command: int, data: bytes = b"", session: int = 0, context: bytes = bytes(8),
         status: int = 0) -> bytes:
    """Encapsulation header (24 bytes) + command data."""
    return struct.pack("<HHII", command, len(data), session, status) + context.ljust(8, b"\x00")[:8] \
        + struct.pack("<I", 0) + data


def enip_list_identity() -> bytes:
    return enip(0x63)


def enip_list_identity_resp(ip_addr: Addr, vendor: int = 1, device_type: int = 14,
                            product_code: int = 55, revision: tuple[int, int] = (20, 11),
                            serial: int = 0x00C0FFEE, name: str = "1756-L61/B LOGIX5561",
                            status: int = 0x0030, state: int = 3) -> bytes:
    nm = name.encode("ascii")
    item = (struct.pack("<H", 1) + struct.pack("!hH4s8s", 2, ENIP_PORT, _ip(ip_addr), bytes(8))
            + struct.pack("<HHHBBHI", vendor, device_type, product_code, revision[0], revision[1],
                          status, serial) + bytes([len(nm)]) + nm + bytes([state]))
    return enip(0x63, struct.pack("<HHH", 1, 0x0C, len(item)) + item)


def enip_register_session(session: int = 0) -> bytes:
    return enip(0x65, struct.pack("<HH", 1, 0), session=session)


def cip_request(service: int, cls: int, instance: int, attribute: int | None = None,
                data: bytes = b"") -> bytes:
    path = bytes([0x20, cls, 0x24, instance]) + (bytes([0x30, attribute]) if attribute is not None else b"")
    return bytes([service, len(path) // 2]) + path + data


def cip_response(service: int, data: bytes = b"", status: int = 0) -> bytes:
    return bytes([service | 0x80, 0, status, 0]) + data


def enip_send_rr_data(session: int, cip: bytes, context: bytes = bytes(8)) -> bytes:
    """SendRRData (0x6F): null address item + unconnected data item carrying `cip`."""
    cpf = struct.pack("<IHHHHHH", 0, 0, 2, 0, 0, 0xB2, len(cip)) + cip
    return enip(0x6F, cpf, session=session, context=context)


def enip_register_session_resp(session: int) -> bytes:
    return enip(0x65, struct.pack("<HH", 1, 0), session=session)


def cip_identity_attributes(vendor: int, device_type: int, product_code: int, revision: tuple[int, int],
                            serial: int, name: str, status: int = 0x0030) -> bytes:
    """The Identity object's attributes 1-7, the answer to Get_Attributes_All on class 1."""
    nm = name.encode("ascii")
    return struct.pack("<HHHBBHI", vendor, device_type, product_code, revision[0], revision[1], status,
                       serial) + bytes([len(nm)]) + nm


def cip_file_initiate_download(size: int, name: str, revision: tuple[int, int] = (1, 0)) -> bytes:
    """File object (class 0x37) Initiate Download: file size, revision, STRINGI name (one
    English ISO 8859-1 short string)."""
    raw = name.encode("ascii")
    stringi = b"\x01eng\xda\x04\x00" + bytes([len(raw)]) + raw
    return struct.pack("<IBB", size, *revision) + stringi


def cip_file_download_transfer(number: int, data: bytes, last: bool) -> bytes:
    """File object Download Transfer: transfer number, packet type (1 middle, 2 last), data."""
    return struct.pack("BB", number & 0xFF, 2 if last else 1) + data


# --------------------------------------------------------------------------- IEC 60870-5-104

IEC104_PORT = 2404
IEC104_STARTDT_ACT = b"\x68\x04\x07\x00\x00\x00"
IEC104_STARTDT_CON = b"\x68\x04\x0b\x00\x00\x00"
IEC104_TESTFR_ACT = b"\x68\x04\x43\x00\x00\x00"
IEC104_TESTFR_CON = b"\x68\x04\x83\x00\x00\x00"


def iec104_s_frame(recv_seq: int) -> bytes:
    return b"\x68\x04\x01\x00" + struct.pack("<H", (recv_seq << 1) & 0xFFFF)


def iec104_i_frame(send_seq: int, recv_seq: int, type_id: int, cot: int, common_addr: int,
                   ioa: int, element: bytes, *, originator: int = 0) -> bytes:
    """I-format APDU carrying one information object (2-byte COT, 2-byte CA, 3-byte IOA).
    `element` is the type's information element, e.g. b'\\x14' for C_IC_NA_1 (type 100, QOI 20)."""
    asdu = (struct.pack("<BBBBH", type_id, 1, cot, originator, common_addr)
            + ioa.to_bytes(3, "little") + element)
    apci = struct.pack("<HH", (send_seq << 1) & 0xFFFF, (recv_seq << 1) & 0xFFFF)
    return struct.pack("BB", 0x68, 4 + len(asdu)) + apci + asdu


# --------------------------------------------------------------------------- BACnet/IP

BACNET_PORT = 47808


def _bvlc(function: int, npdu_apdu: bytes) -> bytes:
    return struct.pack("!BBH", 0x81, function, 4 + len(npdu_apdu)) + npdu_apdu


def bacnet_who_is() -> bytes:
    """Original-Broadcast-NPDU, Who-Is with no range (global broadcast network)."""
    return _bvlc(0x0B, b"\x01\x20\xff\xff\x00\xff" + b"\x10\x08")


def bacnet_object_id(obj_type: int, instance: int) -> int:
    return (obj_type << 22) | instance


def bacnet_i_am(device_instance: int, vendor_id: int = 7) -> bytes:
    apdu = (b"\x10\x00" + b"\xc4" + struct.pack("!I", bacnet_object_id(8, device_instance))
            + b"\x22\x05\xc4" + b"\x91\x03" + b"\x21" + bytes([vendor_id]))
    return _bvlc(0x0B, b"\x01\x00" + apdu)


def bacnet_read_property(invoke_id: int, obj_type: int, instance: int, prop: int = 85) -> bytes:
    """Original-Unicast-NPDU, confirmed ReadProperty (12); property 85 = present-value."""
    apdu = (bytes([0x00, 0x05, invoke_id, 0x0C]) + b"\x0c"
            + struct.pack("!I", bacnet_object_id(obj_type, instance)) + b"\x19" + bytes([prop]))
    return _bvlc(0x0A, b"\x01\x04" + apdu)


def bacnet_read_property_ack(invoke_id: int, obj_type: int, instance: int, value: float,
                             prop: int = 85) -> bytes:
    apdu = (bytes([0x30, invoke_id, 0x0C]) + b"\x0c"
            + struct.pack("!I", bacnet_object_id(obj_type, instance)) + b"\x19" + bytes([prop])
            + b"\x3e\x44" + struct.pack("!f", value) + b"\x3f")
    return _bvlc(0x0A, b"\x01\x00" + apdu)


def bacnet_char_string(text: str) -> bytes:
    """Application-tagged CharacterString (tag 7), UTF-8 (character set 0)."""
    raw = b"\x00" + text.encode("utf-8")
    if len(raw) <= 4:
        return bytes([0x70 | len(raw)]) + raw
    return b"\x75" + bytes([len(raw)]) + raw


def bacnet_read_property_ack_string(invoke_id: int, instance: int, prop: int, text: str) -> bytes:
    """ReadProperty-ACK of a device object's character-string property (121 vendor-name, 70
    model-name, 44 firmware-revision, 12 application-software-version, 77 object-name)."""
    apdu = (bytes([0x30, invoke_id, 0x0C]) + b"\x0c" + struct.pack("!I", bacnet_object_id(8, instance))
            + (b"\x19" + bytes([prop])) + b"\x3e" + bacnet_char_string(text) + b"\x3f")
    return _bvlc(0x0A, b"\x01\x00" + apdu)


def bacnet_read_property_multiple_ack(invoke_id: int, instance: int,
                                      props: Sequence[tuple[int, str]]) -> bytes:
    """ReadPropertyMultiple-ACK of character-string properties of one device object."""
    results = b"".join(b"\x29" + bytes([p]) + b"\x4e" + bacnet_char_string(t) + b"\x4f" for p, t in props)
    apdu = (bytes([0x30, invoke_id, 0x0E]) + b"\x0c" + struct.pack("!I", bacnet_object_id(8, instance))
            + b"\x1e" + results + b"\x1f")
    return _bvlc(0x0A, b"\x01\x00" + apdu)

