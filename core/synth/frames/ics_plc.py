"""PLC protocols: Modbus/TCP, and TPKT/COTP/S7comm."""

from __future__ import annotations

import struct
from collections.abc import Sequence

# --------------------------------------------------------------------------- Modbus/TCP

MODBUS_PORT = 502


def modbus(trans: int, unit: int, pdu: bytes) -> bytes:
    """MBAP header + PDU (`pdu` starts with the function code)."""
    return struct.pack("!HHHB", trans, 0, len(pdu) + 1, unit) + pdu


def mb_read_req(fc: int, addr: int, count: int) -> bytes:
    """FC 1, 2, 3 or 4 request."""
    return struct.pack("!BHH", fc, addr, count)


def mb_read_bits_resp(fc: int, bits: Sequence[bool]) -> bytes:
    """FC 1 or 2 response."""
    packed = _pack_bits(bits)
    return struct.pack("!BB", fc, len(packed)) + packed


def mb_read_regs_resp(fc: int, regs: Sequence[int]) -> bytes:
    """FC 3 or 4 response."""
    return struct.pack(f"!BB{len(regs)}H", fc, 2 * len(regs), *regs)


def mb_write_single_coil(addr: int, on: bool) -> bytes:
    """FC 5 request; the normal response echoes it."""
    return struct.pack("!BHH", 5, addr, 0xFF00 if on else 0)


def mb_write_single_reg(addr: int, value: int) -> bytes:
    """FC 6 request; the normal response echoes it."""
    return struct.pack("!BHH", 6, addr, value & 0xFFFF)


def mb_write_coils(addr: int, bits: Sequence[bool]) -> bytes:
    """FC 15 request."""
    packed = _pack_bits(bits)
    return struct.pack("!BHHB", 15, addr, len(bits), len(packed)) + packed


def mb_write_regs(addr: int, regs: Sequence[int]) -> bytes:
    """FC 16 request."""
    return struct.pack(f"!BHHB{len(regs)}H", 16, addr, len(regs), 2 * len(regs), *regs)


def mb_write_multi_resp(fc: int, addr: int, count: int) -> bytes:
    """FC 15 or 16 response."""
    return struct.pack("!BHH", fc, addr, count)


def mb_report_server_id() -> bytes:
    """FC 17 request."""
    return b"\x11"


def mb_report_server_id_resp(server_id: bytes, running: bool = True) -> bytes:
    body = server_id + (b"\xff" if running else b"\x00")
    return struct.pack("!BB", 17, len(body)) + body


def mb_read_device_id(code: int = 1, object_id: int = 0) -> bytes:
    """FC 43 / MEI 14 Read Device Identification request (code 1 basic ... 4 one object)."""
    return struct.pack("!BBBB", 43, 14, code, object_id)


def mb_read_device_id_resp(objects: Sequence[tuple[int, bytes]], code: int = 1,
                           conformity: int = 0x01) -> bytes:
    body = b"".join(struct.pack("!BB", oid, len(v)) + v for oid, v in objects)
    return struct.pack("!BBBBBBB", 43, 14, code, conformity, 0, 0, len(objects)) + body


def mb_exception(fc: int, code: int) -> bytes:
    """Exception response: function code with the 0x80 bit, exception code (2 illegal address...)."""
    return struct.pack("!BB", fc | 0x80, code)


def _pack_bits(bits: Sequence[bool]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


# --------------------------------------------------------------------------- TPKT / COTP / S7comm

S7_PORT = 102
S7_AREA_DB = 0x84
S7_AREA_INPUTS = 0x81
S7_AREA_OUTPUTS = 0x82
S7_AREA_FLAGS = 0x83
S7_BLOCK_TYPES = {"OB": "08", "DB": "0A", "SDB": "0B", "FC": "0C", "SFC": "0D", "FB": "0E", "SFB": "0F"}


def tpkt(payload: bytes) -> bytes:
    return struct.pack("!BBH", 3, 0, 4 + len(payload)) + payload


def cotp_cr(src_ref: int = 1, calling_tsap: int = 0x0100, called_tsap: int = 0x0102,
            tpdu_size: int = 0x0A) -> bytes:
    """TPKT + COTP Connection Request (called TSAP 0x0102 = rack 0 slot 2)."""
    return tpkt(struct.pack("!BBHHBBBBBBHBBH", 17, 0xE0, 0, src_ref, 0, 0xC0, 1, tpdu_size,
                            0xC1, 2, calling_tsap, 0xC2, 2, called_tsap))


def cotp_cc(dst_ref: int = 1, src_ref: int = 2, calling_tsap: int = 0x0100,
            called_tsap: int = 0x0102, tpdu_size: int = 0x0A) -> bytes:
    """TPKT + COTP Connection Confirm."""
    return tpkt(struct.pack("!BBHHBBBBBBHBBH", 17, 0xD0, dst_ref, src_ref, 0, 0xC0, 1, tpdu_size,
                            0xC1, 2, calling_tsap, 0xC2, 2, called_tsap))


def cotp_dr(dst_ref: int = 1, src_ref: int = 2, reason: int = 0) -> bytes:
    """TPKT + COTP Disconnect Request (how a CPU refuses a connection to a wrong TSAP)."""
    return tpkt(struct.pack("!BBHHB", 6, 0x80, dst_ref, src_ref, reason))


def s7(rosctr: int, pduref: int, param: bytes, data: bytes = b"", error: int | None = None) -> bytes:
    """TPKT + COTP DT + S7 header (+ error class/code for Ack/Ack_Data) + parameter + data."""
    hdr = struct.pack("!BBHHHH", 0x32, rosctr, 0, pduref, len(param), len(data))
    if rosctr in (2, 3):
        hdr += struct.pack("!H", error or 0)
    return tpkt(b"\x02\xf0\x80" + hdr + param + data)


def s7_setup_comm(pduref: int = 0, pdu_size: int = 480, amq: int = 1) -> bytes:
    return s7(1, pduref, struct.pack("!BBHHH", 0xF0, 0, amq, amq, pdu_size))


def s7_setup_comm_ack(pduref: int = 0, pdu_size: int = 240, amq: int = 1) -> bytes:
    return s7(3, pduref, struct.pack("!BBHHH", 0xF0, 0, amq, amq, pdu_size))


S7Item = tuple[int, int, int, int]  # (area, db, byte address, byte count)


def _s7_item(area: int, db: int, byte_addr: int, count: int, transport: int = 2) -> bytes:
    addr = byte_addr << 3
    return struct.pack("!BBBBHHB", 0x12, 0x0A, 0x10, transport, count, db, area) + addr.to_bytes(3, "big")


def s7_read_var(pduref: int, items: Sequence[S7Item]) -> bytes:
    """Job Read Var (func 0x04) for BYTE items."""
    param = struct.pack("!BB", 4, len(items)) + b"".join(_s7_item(*it) for it in items)
    return s7(1, pduref, param)


def s7_read_var_ack(pduref: int, values: Sequence[bytes]) -> bytes:
    """Ack_Data of Read Var: one successful data item per value (BYTE transport, length in bits)."""
    data = b""
    for i, v in enumerate(values):
        data += struct.pack("!BBH", 0xFF, 4, 8 * len(v)) + v
        if len(v) & 1 and i < len(values) - 1:
            data += b"\x00"
    return s7(3, pduref, struct.pack("!BB", 4, len(values)), data)


def s7_write_var(pduref: int, area: int, db: int, byte_addr: int, value: bytes) -> bytes:
    """Job Write Var (func 0x05) of one BYTE item."""
    param = struct.pack("!BB", 5, 1) + _s7_item(area, db, byte_addr, len(value))
    data = struct.pack("!BBH", 0, 4, 8 * len(value)) + value
    return s7(1, pduref, param, data)


def s7_write_var_ack(pduref: int, return_code: int = 0xFF) -> bytes:
    return s7(3, pduref, b"\x05\x01", bytes([return_code]))


def s7_plc_stop(pduref: int) -> bytes:
    """Job PLC Stop (func 0x29)."""
    return s7(1, pduref, b"\x29" + bytes(5) + b"\x09P_PROGRAM")


def s7_plc_stop_ack(pduref: int) -> bytes:
    return s7(3, pduref, b"\x29")


def s7_pi_service(pduref: int, service: str, params: bytes = b"") -> bytes:
    """Job PI-Service (func 0x28), e.g. service 'P_PROGRAM' with no params = hot start."""
    svc = service.encode("ascii")
    param = (b"\x28" + bytes(6) + b"\xfd" + struct.pack("!H", len(params)) + params
             + bytes([len(svc)]) + svc)
    return s7(1, pduref, param)


def s7_pi_ack(pduref: int) -> bytes:
    return s7(3, pduref, b"\x28\x00")


def s7_block_name(block_type: str, number: int) -> bytes:
    return (S7_BLOCK_TYPES[block_type] + f"{number:05d}").encode("ascii")


def s7_delete_block(pduref: int, block_type: str, number: int) -> bytes:
    """PI-Service _DELE of one block (passive file system 'B')."""
    return s7_pi_service(pduref, "_DELE", b"\x01\x00" + s7_block_name(block_type, number) + b"B")


def s7_request_download(pduref: int, block_type: str, number: int, load_len: int = 104,
                        mc7_len: int = 60) -> bytes:
    """Job Request Download (func 0x1A) of a block to the passive file system."""
    fname = b"_" + s7_block_name(block_type, number) + b"P"
    part2 = b"1" + f"{load_len:06d}".encode() + f"{mc7_len:06d}".encode()
    param = (b"\x1a\x00\x00\x00" + bytes(4) + bytes([len(fname)]) + fname
             + bytes([len(part2)]) + part2)
    return s7(1, pduref, param)


def s7_request_download_ack(pduref: int) -> bytes:
    return s7(3, pduref, b"\x1a")


def s7_start_upload(pduref: int, block_type: str, number: int) -> bytes:
    """Job Start Upload (func 0x1D) of a block from the active file system."""
    fname = b"_" + s7_block_name(block_type, number) + b"A"
    return s7(1, pduref, b"\x1d\x00\x00\x00" + bytes(4) + bytes([len(fname)]) + fname)


def s7_start_upload_ack(pduref: int, upload_id: int = 7, length: int = 104) -> bytes:
    blen = f"{length:07d}".encode()
    return s7(3, pduref, b"\x1d\x00\x01\x00" + struct.pack("!I", upload_id) + bytes([len(blen)]) + blen)


def s7_szl_read(pduref: int, szl_id: int, index: int = 0, seq: int = 0) -> bytes:
    """Userdata request, function group 4 (CPU functions), subfunction 1 Read SZL."""
    param = b"\x00\x01\x12\x04\x11\x44\x01" + bytes([seq])
    data = struct.pack("!BBHHH", 0xFF, 9, 4, szl_id, index)
    return s7(7, pduref, param, data)


def s7_mode_transition(pduref: int, mode: int = 0, seq: int = 1) -> bytes:
    """Userdata push from the CPU, function group 0 (mode-transition): the CPU reports its new
    mode (subfunction: 0 STOP, 2 RUN ...). Parameter head 01 00 10, method Req (0x11), no data."""
    param = b"\x01\x00\x10\x04\x11\x00" + bytes([mode, seq])
    return s7(7, pduref, param)


def s7_szl_response(pduref: int, szl_id: int, index: int, entries: Sequence[bytes], seq: int = 1) -> bytes:
    """Userdata response to Read SZL with equally sized list entries."""
    param = b"\x00\x01\x12\x08\x12\x84\x01" + bytes([seq]) + b"\x00\x00\x00\x00"
    size = len(entries[0]) if entries else 0
    body = struct.pack("!HHHH", szl_id, index, size, len(entries)) + b"".join(entries)
    data = struct.pack("!BBH", 0xFF, 9, len(body)) + body
    return s7(7, pduref, param, data)


def szl_0011_entries(order_number: str = "6ES7 315-2EH14-0AB0", hw: int = 1, fw: tuple[int, int] = (3, 3)) -> list[bytes]:
    """SZL 0x0011 (module identification) records: module, hardware and firmware."""
    mlfb = order_number.encode("ascii").ljust(20)[:20]
    return [
        struct.pack("!H", 1) + mlfb + struct.pack("!HHH", 0, hw, 0),
        struct.pack("!H", 6) + mlfb + struct.pack("!HHH", 0, hw, 0),
        struct.pack("!H", 7) + mlfb + struct.pack("!HBBBB", 0, ord("V"), fw[0], fw[1], 0),
    ]
