"""ICS logs to operations keyed like the packet path's (plantwatch.core.decode.ics docstring).

One function per log; each returns OP_ROWS: the Zeek uid, the evidence ref (file id << 32 | line),
whether Zeek's originator sent it, and the OPS key columns (app, direction, code, sub, group,
service, exception). Logs that only detail operations another log already counts (s7comm_read_szl,
s7comm_upload_download, dnp3_objects, modbus_mask_write_register,
modbus_read_write_multiple_registers, bacnet_discovery, bacnet_property, cotp) give no rows of
their own; modbus.log is read only where no modbus_detailed.log covers the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import polars as pl

from plantwatch.core.decode import ics
from plantwatch.core.decode.schema import (
    APP_BACNET,
    APP_DNP3,
    APP_ENIP,
    APP_IEC104,
    APP_MODBUS,
    APP_OPCUA,
    APP_S7,
    APP_S7PLUS,
    DIR_OTHER,
    DIR_REQUEST,
    DIR_RESPONSE,
)
from plantwatch.core.pipeline.zeek.reader import ZeekLog, ts_ns

OP_ROWS: dict[str, pl.DataType] = {
    "uid": pl.String(),  # the log's `_key` (uid and connection id), the join key
    "ref": pl.Int64(), "ts": pl.Int64(), "is_orig": pl.Boolean(),
    "orig_h": pl.String(), "orig_p": pl.Int32(), "resp_h": pl.String(), "resp_p": pl.Int32(),
    "app": pl.UInt8(), "direction": pl.UInt8(), "code": pl.Int32(), "sub": pl.Int32(),
    "group": pl.Int32(), "service": pl.String(), "exception": pl.Int32(),
}

MODBUS_FUNC = {
    "READ_COILS": 1, "READ_DISCRETE_INPUTS": 2, "READ_HOLDING_REGISTERS": 3, "READ_INPUT_REGISTERS": 4,
    "WRITE_SINGLE_COIL": 5, "WRITE_SINGLE_REGISTER": 6, "READ_EXCEPTION_STATUS": 7, "DIAGNOSTICS": 8,
    "GET_COMM_EVENT_COUNTER": 11, "GET_COMM_EVENT_LOG": 12, "WRITE_MULTIPLE_COILS": 15,
    "WRITE_MULTIPLE_REGISTERS": 16, "REPORT_SLAVE_ID": 17, "REPORT_SERVER_ID": 17,
    "READ_FILE_RECORD": 20, "WRITE_FILE_RECORD": 21, "MASK_WRITE_REGISTER": 22,
    "READ_WRITE_MULTIPLE_REGISTERS": 23, "READ_FIFO_QUEUE": 24, "ENCAP_INTERFACE_TRANSPORT": 43,
}
MODBUS_MEI = {"READ DEVICE IDENTIFICATION": 14, "CANOPEN GENERAL REFERENCE": 13}
DNP3_FUNC = {
    "CONFIRM": 0, "READ": 1, "WRITE": 2, "SELECT": 3, "OPERATE": 4, "DIRECT_OPERATE": 5,
    "DIRECT_OPERATE_NR": 6, "IMMED_FREEZE": 7, "IMMED_FREEZE_NR": 8, "FREEZE_CLEAR": 9,
    "FREEZE_CLEAR_NR": 10, "FREEZE_AT_TIME": 11, "FREEZE_AT_TIME_NR": 12, "COLD_RESTART": 13,
    "WARM_RESTART": 14, "INITIALIZE_DATA": 15, "INITIALIZE_APPL": 16, "START_APPL": 17,
    "STOP_APPL": 18, "SAVE_CONFIG": 19, "ENABLE_UNSOLICITED": 20, "DISABLE_UNSOLICITED": 21,
    "ASSIGN_CLASS": 22, "DELAY_MEASURE": 23, "RECORD_CURRENT_TIME": 24, "OPEN_FILE": 25,
    "CLOSE_FILE": 26, "DELETE_FILE": 27, "GET_FILE_INFO": 28, "AUTHENTICATE_FILE": 29,
    "ABORT_FILE": 30, "ACTIVATE_CONFIG": 31, "AUTHENTICATE_REQ": 32, "AUTHENTICATE_ERR": 33,
    "RESPONSE": 129, "UNSOLICITED_RESPONSE": 130, "AUTHENTICATE_RESP": 131,
}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BACNET = {(_norm(n), 0): c for c, (_, n) in ics.BACNET_CONFIRMED.items()}
_BACNET.update({(_norm(n), 1): c for c, (_, n) in ics.BACNET_UNCONFIRMED.items()})
# services of BACnet revisions after the taxonomy's table (ICSNPP names them)
_BACNET.update({("unconfirmedcovnotificationmultiple", 1): 11, ("unconfirmedauditnotification", 1): 12,
                ("whoami", 1): 13, ("youare", 1): 14, ("subscribecovpropertymultiple", 0): 30,
                ("confirmedcovnotificationmultiple", 0): 31, ("confirmedauditnotification", 0): 32,
                ("auditlogquery", 0): 33})
_IEC104_NAMES = {n.split()[0]: t for t, (_, n) in ics.IEC104_TYPE.items() if "_" in n.split()[0]}


@lru_cache(maxsize=65536)
def _num(s: str | None) -> int | None:
    """'0x1a', '26', 'unknown-26' -> 26; None when there is no number."""
    if s is None:
        return None
    s = s.strip()
    try:
        return int(s, 16) if s.lower().startswith("0x") else int(s)
    except ValueError:
        m = re.search(r"(\d+)$", s)
        return int(m.group(1)) if m else None


def _name_code(table: dict[str, int]) -> Callable[[str | None], int | None]:
    @lru_cache(maxsize=4096)
    def f(s: str | None) -> int | None:
        if s is None:
            return None
        return table.get(s.upper().removesuffix("_EXCEPTION"), _num(s))
    return f


def _base(log: ZeekLog, file_id: int) -> pl.DataFrame:
    f = log.frame
    def col(c: str) -> pl.Expr:
        return pl.col(c) if c in f.columns else pl.lit(None, pl.String)
    is_orig = (col("is_orig") == "T") if "is_orig" in f.columns else pl.lit(None, pl.Boolean)
    return f.select(
        pl.col("_key").alias("uid"), (pl.lit(file_id << 32, pl.Int64) + pl.col("_line")).alias("ref"),
        ts_ns().alias("ts") if "ts" in f.columns else pl.lit(None, pl.Int64).alias("ts"),
        is_orig.alias("is_orig"),
        col("id.orig_h").alias("orig_h"), col("id.orig_p").cast(pl.Int32, strict=False).alias("orig_p"),
        col("id.resp_h").alias("resp_h"), col("id.resp_p").cast(pl.Int32, strict=False).alias("resp_p"))


def _finish(base: pl.DataFrame, **cols: list) -> pl.DataFrame:
    out = base.with_columns(pl.Series(k, v, OP_ROWS[k]) for k, v in cols.items())
    return out.with_columns(pl.lit(None, OP_ROWS[k]).alias(k) for k in OP_ROWS if k not in out.columns
                            ).select(list(OP_ROWS))


def _vals(log: ZeekLog, c: str) -> list:
    return log.frame[c].to_list() if c in log.frame.columns else [None] * log.height


def modbus_detailed(log: ZeekLog, file_id: int) -> pl.DataFrame:
    """A row is a request and its response (matched T), or one unmatched PDU: newer ICSNPP
    releases say which (is_orig / request_response); older ones do not, and there the first
    unmatched row of a (uid, tid) is the request and the next one its response."""
    base = _base(log, file_id)
    fc = [_name_code(MODBUS_FUNC)(s) for s in _vals(log, "func")]
    mei = [MODBUS_MEI.get((s or "").upper()) for s in _vals(log, "mei_type")]
    sub_raw = [_num(s) for s in _vals(log, "request_subfunction_code")]
    sub = [m if c == 43 else (s if c == 8 else None) for c, m, s in zip(fc, mei, sub_raw, strict=True)]
    exc = [_num(e) if e and _num(e) is not None else (1 if e else None) for e in _vals(log, "exception_code")]
    exc_names = {"ILLEGAL_FUNCTION": 1, "ILLEGAL_DATA_ADDRESS": 2, "ILLEGAL_DATA_VALUE": 3,
                 "SLAVE_DEVICE_FAILURE": 4, "SERVER_DEVICE_FAILURE": 4, "ACKNOWLEDGE": 5,
                 "SLAVE_DEVICE_BUSY": 6, "SERVER_DEVICE_BUSY": 6, "MEMORY_PARITY_ERROR": 8,
                 "GATEWAY_PATH_UNAVAILABLE": 10, "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND": 11}
    exc = [exc_names.get(e.upper(), x) if e else None for e, x in zip(_vals(log, "exception_code"), exc, strict=True)]
    rr = _vals(log, "request_response")
    orig = _vals(log, "is_orig")
    matched = [m == "T" for m in _vals(log, "matched")]
    seen: set[tuple] = set()
    rows: list[int] = []
    dirs: list[int] = []
    for i, (u, t) in enumerate(zip(_vals(log, "uid"), _vals(log, "tid"), strict=True)):
        if rr[i] in ("REQUEST", "RESPONSE"):
            rows.append(i)
            dirs.append(DIR_REQUEST if rr[i] == "REQUEST" else DIR_RESPONSE)
        elif matched[i]:
            rows += [i, i]
            dirs += [DIR_REQUEST, DIR_RESPONSE]
        elif orig[i] in ("T", "F"):
            rows.append(i)
            dirs.append(DIR_REQUEST if orig[i] == "T" else DIR_RESPONSE)
        else:
            rows.append(i)
            dirs.append(DIR_RESPONSE if (u, t) in seen else DIR_REQUEST)
            seen.add((u, t))
    b = base[rows]
    return _finish(b.with_columns(pl.Series("is_orig", [d == DIR_REQUEST for d in dirs])),
                   app=[APP_MODBUS] * len(rows), direction=dirs, code=[fc[i] for i in rows],
                   sub=[sub[i] for i in rows],
                   exception=[exc[i] if d == DIR_RESPONSE else None for i, d in zip(rows, dirs, strict=True)])


def modbus(log: ZeekLog, file_id: int) -> pl.DataFrame:
    """Zeek's modbus.log: one row per request/response pair (the response's func; *_EXCEPTION)."""
    base = _base(log, file_id)
    rows = [i for i in range(log.height) for _ in (0, 1)]
    fc = [_name_code(MODBUS_FUNC)(s) for s in _vals(log, "func")]
    exc = _vals(log, "exception")
    dirs = [DIR_REQUEST, DIR_RESPONSE] * log.height
    return _finish(base[rows].with_columns(pl.Series("is_orig", [d == DIR_REQUEST for d in dirs])),
                   app=[APP_MODBUS] * len(rows), direction=dirs, code=[fc[i] for i in rows],
                   exception=[(1 if exc[i] else None) if d == DIR_RESPONSE else None
                              for i, d in zip(rows, dirs, strict=True)])


_DNP3_CONTROL = (3, 4, 5, 6)


def dnp3(log: ZeekLog, file_id: int, *, control_logged: bool = False) -> pl.DataFrame:
    """Zeek's dnp3.log: one row per request (fc_request) and/or reply (fc_reply). Zeek pairs a
    reply with the last request it saw, so back-to-back requests lose all but one (the reply
    then reads fc_request '-'). Where dnp3_control.log is present, control requests (Select,
    Operate, Direct Operate) are counted from it instead (`dnp3_control`)."""
    base = _base(log, file_id)
    rows, codes, dirs, orig = [], [], [], []
    req, rep = _vals(log, "fc_request"), _vals(log, "fc_reply")
    code = _name_code(DNP3_FUNC)
    for i in range(log.height):
        if req[i] is not None and not (control_logged and code(req[i]) in _DNP3_CONTROL):
            rows.append(i)
            codes.append(code(req[i]))
            dirs.append(DIR_REQUEST)
            orig.append(True)
        if rep[i] is not None:
            rows.append(i)
            codes.append(code(rep[i]))
            dirs.append(DIR_RESPONSE if code(rep[i]) == 129 else DIR_OTHER)
            orig.append(False)
    return _finish(base[rows].with_columns(pl.Series("is_orig", orig)), app=[APP_DNP3] * len(rows),
                   direction=dirs, code=codes)


def dnp3_control(log: ZeekLog, file_id: int) -> pl.DataFrame:
    """ICSNPP dnp3_control.log: one row per control object; a request row is counted as one
    control request (a request carrying several control objects counts once per object)."""
    base = _base(log, file_id)
    code = _name_code(DNP3_FUNC)
    fc = [code(s) for s in _vals(log, "function_code")]
    keep = [i for i, (o, c) in enumerate(zip(_vals(log, "is_orig"), fc, strict=True))
            if o == "T" and c in _DNP3_CONTROL]
    return _finish(base[keep], app=[APP_DNP3] * len(keep), direction=[DIR_REQUEST] * len(keep),
                   code=[fc[i] for i in keep])


def s7comm(log: ZeekLog, file_id: int) -> pl.DataFrame:
    """ICSNPP s7comm.log: one row per PDU. Userdata function codes are 0x4g (request) or 0x8g
    (response) with g the group; the packet path keys them group << 8 | subfunction."""
    base = _base(log, file_id)
    codes, subs, groups, dirs, excs = [], [], [], [], []
    for ros, fc, sf, er in zip(_vals(log, "rosctr_code"), _vals(log, "function_code"),
                                   _vals(log, "subfunction_code"),
                                   _vals(log, "error_code"), strict=True):
        r, f, s = _num(ros), _num(fc), _num(sf)
        if r == 7 and f is not None:
            g = f & 0x0F
            codes.append((g << 8) | (s or 0))
            subs.append(s)
            groups.append(g)
            dirs.append(DIR_REQUEST if (f >> 4) == 4 else DIR_RESPONSE)
        else:
            codes.append(f)
            subs.append(None)
            groups.append(None)
            dirs.append({1: DIR_REQUEST, 2: DIR_RESPONSE, 3: DIR_RESPONSE}.get(r or 0, DIR_OTHER))
        e = _num(er)
        excs.append(e if e else None)
    return _finish(base, app=[APP_S7] * log.height, direction=dirs, code=codes, sub=subs, group=groups,
                   exception=excs)


def s7comm_plus(log: ZeekLog, file_id: int) -> pl.DataFrame:
    base = _base(log, file_id)
    opc = [_num(o) for o in _vals(log, "opcode")]
    return _finish(base, app=[APP_S7PLUS] * log.height,
                   direction=[{0x31: DIR_REQUEST, 0x32: DIR_RESPONSE}.get(o or 0, DIR_OTHER) for o in opc],
                   code=[_num(c) for c in _vals(log, "function_code")], sub=opc)


def enip(log: ZeekLog, file_id: int) -> pl.DataFrame:
    """enip.log: encapsulation commands that carry no CIP (0x6F/0x70 come from cip.log)."""
    base = _base(log, file_id)
    cmd = [_num(c) for c in _vals(log, "enip_command_code")]
    keep = [i for i, c in enumerate(cmd) if c is not None and c not in (0x6F, 0x70)]
    orig = [o != "F" for o in _vals(log, "is_orig")]
    return _finish(base[keep], app=[APP_ENIP] * len(keep),
                   direction=[DIR_REQUEST if orig[i] else DIR_RESPONSE for i in keep],
                   code=[cmd[i] for i in keep])


def cip(log: ZeekLog, file_id: int) -> pl.DataFrame:
    """cip.log: one row per CIP service (a Multiple Service Packet and each service inside it).
    Connected messages (Send Unit Data) have a sequence count; unconnected ones do not."""
    base = _base(log, file_id)
    seq = _vals(log, "cip_sequence_count")
    direction = _vals(log, "direction")
    status = [_num(s) for s in _vals(log, "cip_status_code")]
    dirs = [DIR_RESPONSE if (d or "").lower() == "response" else DIR_REQUEST for d in direction]
    return _finish(base, app=[APP_ENIP] * log.height, direction=dirs,
                   code=[(_num(c) or 0) & 0x7F if c is not None else None for c in _vals(log, "cip_service_code")],
                   group=[_num(c) for c in _vals(log, "class_id")],
                   sub=[0x70 if s is not None else 0x6F for s in seq],
                   exception=[s if s else None for s in status])


def bacnet(log: ZeekLog, file_id: int) -> pl.DataFrame:
    """bacnet.log: one row per APDU; those naming a service become operations."""
    base = _base(log, file_id)
    keep, codes, subs, dirs, excs = [], [], [], [], []
    for i, (pt, svc) in enumerate(zip(_vals(log, "pdu_type"), _vals(log, "pdu_service"), strict=True)):
        pt = (pt or "").upper()
        if not svc or pt in ("", "SEGMENT_ACK", "REJECT", "ABORT") or pt.startswith("NETWORK"):
            continue
        unconf = pt.startswith("UNCONFIRMED")
        code = _BACNET.get((_norm(svc), 1 if unconf else 0), _num(svc))
        if code is None:
            continue
        keep.append(i)
        codes.append(code)
        subs.append(1 if unconf else 0)
        if unconf:
            dirs.append({8: DIR_REQUEST, 7: DIR_REQUEST, 0: DIR_RESPONSE, 1: DIR_RESPONSE}.get(code, DIR_OTHER))
        else:
            dirs.append(DIR_REQUEST if pt.startswith("CONFIRMED") else DIR_RESPONSE)
        excs.append(1 if pt == "ERROR" else None)
    return _finish(base[keep], app=[APP_BACNET] * len(keep), direction=dirs, code=codes, sub=subs,
                   exception=excs)


def opcua_binary(log: ZeekLog, file_id: int) -> pl.DataFrame:
    """opcua_binary.log: msg_type (HEL, ACK, OPN, MSG, CLO, ERR); MSG carries the service node id."""
    base = _base(log, file_id)
    known = {"HEL", "ACK", "OPN", "MSG", "CLO", "ERR", "RHE"}  # the name is shown: nothing else from the wire
    mt = [m.upper() if m and m.upper() in known else None for m in _vals(log, "msg_type")]
    ident = [_num(x) for x in _vals(log, "identifier")]
    orig = [o != "F" for o in _vals(log, "is_orig")]
    return _finish(base, app=[APP_OPCUA] * log.height, service=mt,
                   code=[i if m == "MSG" else None for m, i in zip(mt, ident, strict=True)],
                   direction=[DIR_REQUEST if o else DIR_RESPONSE for o in orig])


def iec104(log: ZeekLog, file_id: int) -> pl.DataFrame:
    """IEC 104 logs of the spicy parsers: APCI format (I/S/U), the ASDU type (a number or its
    M_/C_ name) and the cause of transmission, under the names those parsers use."""
    base = _base(log, file_id)
    cols = log.frame.columns
    def first(*names: str) -> list:
        for n in names:
            if n in cols:
                return _vals(log, n)
        return [None] * log.height
    fmt = first("apdu_type", "apci_type", "format")
    typ = first("asdu_type", "info_obj_code", "info_obj_type", "type_id", "ti")
    cot = first("cot", "cause_tx", "cot_num")
    groups, codes, subs = [], [], []
    for f, t, c in zip(fmt, typ, cot, strict=True):
        g = {"I": 0, "S": 1, "U": 3}.get((f or "I").strip().upper()[:1], 0)
        groups.append(g)
        code = _num(t) if t is not None and _num(t) is not None else _IEC104_NAMES.get((t or "").strip())
        codes.append(code if g == 0 else None)
        subs.append(_num(c))
    return _finish(base, app=[APP_IEC104] * log.height, group=groups, code=codes, sub=subs,
                   direction=[DIR_OTHER] * log.height)


# log name -> mapper. Zeek names the IEC 104 log after the parser: iec104 / iec60870_5_104.
MAPPERS: dict[str, Callable[[ZeekLog, int], pl.DataFrame]] = {
    "modbus_detailed": modbus_detailed, "modbus": modbus, "dnp3": dnp3, "s7comm": s7comm,
    "s7comm_plus": s7comm_plus, "enip": enip, "cip": cip, "bacnet": bacnet,
    "dnp3_control": dnp3_control, "opcua_binary": opcua_binary, "iec104": iec104, "iec60870_5_104": iec104,
}
# logs read for what they say about devices or that detail rows counted elsewhere
DETAIL_LOGS = frozenset({
    "s7comm_read_szl", "s7comm_upload_download", "s7comm_known_devices", "cotp",
    "dnp3_objects", "modbus_mask_write_register", "modbus_read_write_multiple_registers",
    "bacnet_discovery", "bacnet_property", "cip_identity", "cip_io", "profinet_io_cm",
    "profinet", "profinet_dce_rpc", "opcua_binary_status_code_detail",
})


def empty_op_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=OP_ROWS)


def op_rows(logs: list[tuple[ZeekLog, int]]) -> pl.DataFrame:
    """Operations of every ICS log in `logs` ((log, file id) pairs), classified (cls, name)."""
    names = {log.name for log, _ in logs}
    parts = []
    for log, fid in logs:
        mapper = MAPPERS.get(log.name)
        if mapper is None or log.height == 0 or "uid" not in log.frame.columns:
            continue
        if log.name == "modbus" and "modbus_detailed" in names:
            continue
        if log.name == "dnp3":
            parts.append(dnp3(log, fid, control_logged="dnp3_control" in names))
        else:
            parts.append(mapper(log, fid))
    if not parts:
        return ics.classify_ops(empty_op_rows())
    return ics.classify_ops(pl.concat(parts))
