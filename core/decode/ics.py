"""The ICS operation taxonomy: protocol codes to READ / DISCOVER / ACTION / REPROGRAM, with names.

Everything here is data (dicts keyed by protocol codes, from the reference table
shared/reference/ics-operations.md §1-2); `classify_ops` applies it to a whole OPS frame at once.

How an op row is keyed (columns of core/decode/schema.OPS):

- Modbus: code = function code (7-bit); sub = MEI type (FC 43), diagnostic sub-function (FC 8)
  or UMAS function code (FC 90).
- S7comm: code = parameter function for Job/Ack_Data (0x04 Read Var ...); for Userdata
  code = group << 8 | subfunction (always >= 0x100, so it never collides with a function), with
  group and sub also set; a mode-transition push (group 0) is keyed as group S7_MODE_TRANSITION
  (0x10): code 0x1000 | new mode, sent by the PLC as a request. PI services (0x28) are told apart by `service` (P_PROGRAM, _DELE ...).
- S7comm-plus: code = function (0x054C ...), sub = opcode (0x31 request, 0x32 response).
- DNP3: code = application function, sub = first object group.
- EtherNet/IP: a CIP message has code = CIP service (7-bit), group = request path class,
  sub = encapsulation command (0x6F/0x70); an encapsulation command without CIP has
  code = command and sub null.
- IEC 104: group = APCI format (0 I, 1 S, 3 U); I-format: code = type id, sub = cause of
  transmission; U-format: code null, sub = U function bits (0x01 STARTDT act ... 0x20 TESTFR con).
- BACnet: code = service choice, sub = 0 confirmed / 1 unconfirmed.
- OPC UA: service = message type (HEL, ACK, OPN, CLO, MSG, ERR); MSG: code = service node id.
- FINS, ADS/AMS, MELSEC MC, HART-IP, C37.118: see core/decode/ics_plc.py.
- IEC 61850 MMS: sub = MMS PDU choice (0 confirmed-Request, 1 -Response, 2 -Error, 3 unconfirmed,
  4 reject, 8-13 initiate/conclude); code = confirmed service (or unconfirmed service for sub 3).
- GOOSE: code = GOOSE_* below (publish, state change, sequence anomalies), from core/decode/goose.py.
- PROFINET DCP: code = service id << 8 | service type (0 request, bit 0 response); sub = the
  first block's option << 8 | suboption (0x0102 IP, 0x0202 name of station, 0x0505 reset ...).

Direction: the class depends only on the codes above, never on `direction`. Where a response
carries the code of what it answers (Modbus, S7 Ack_Data and userdata responses, CIP replies,
BACnet ACKs, IEC 104 confirmations) it gets the same class; where responses have codes of their
own (DNP3 129/130 READ; OPC UA response ids, unlisted) they get what the table says for that
code. Models that count commands should filter on direction == DIR_REQUEST.
"""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.ics_61850 import classify_61850
from plantwatch.core.decode.ics_plc import PLC_PORTS, classify_plc
from plantwatch.core.decode.schema import (
    APP_BACNET,
    APP_DNP3,
    APP_ENIP,
    APP_GOOSE,
    APP_IEC104,
    APP_MMS,
    APP_MODBUS,
    APP_OPCUA,
    APP_PROFINET,
    APP_S7,
    APP_S7PLUS,
    CLS_ACTION,
    CLS_DISCOVER,
    CLS_NONE,
    CLS_READ,
    CLS_REPROGRAM,
    OPS,
)

R, D, A, P, N = CLS_READ, CLS_DISCOVER, CLS_ACTION, CLS_REPROGRAM, CLS_NONE

# The one place ICS ports and application ids live (sessions, the inventory and the models import
# them from here). Per app: transport (6 TCP, 17 UDP) -> its standard ports.
APP_PORTS: dict[int, dict[int, frozenset[int]]] = {
    APP_MODBUS: {6: frozenset({502})},
    APP_S7: {6: frozenset({102})},
    APP_S7PLUS: {6: frozenset({102})},
    APP_DNP3: {6: frozenset({20000}), 17: frozenset({20000})},
    APP_ENIP: {6: frozenset({44818}), 17: frozenset({44818, 2222})},
    APP_IEC104: {6: frozenset({2404})},
    APP_BACNET: {17: frozenset({47808})},
    APP_OPCUA: {6: frozenset({4840})},
    **PLC_PORTS,
    APP_MMS: {6: frozenset({102})},
}
ICS_TCP_PORTS = frozenset(p for m in APP_PORTS.values() for p in m.get(6, ()))
ICS_UDP_PORTS = frozenset(p for m in APP_PORTS.values() for p in m.get(17, ()))
ICS_PORTS = ICS_TCP_PORTS | ICS_UDP_PORTS  # any ICS port, either transport
# ICS protocols carried directly on Ethernet (no port): they have no entry in APP_PORTS.
ICS_L2_APPS = frozenset({APP_GOOSE, APP_PROFINET})
ICS_APPS = frozenset(APP_PORTS) | ICS_L2_APPS

# ---------------------------------------------------------------------------------------------
# Modbus (function_code_vals)
MODBUS_FC: dict[int, tuple[int, str]] = {
    1: (R, "Read Coils"), 2: (R, "Read Discrete Inputs"), 3: (R, "Read Holding Registers"),
    4: (R, "Read Input Registers"), 5: (A, "Write Single Coil"), 6: (A, "Write Single Register"),
    7: (R, "Read Exception Status"), 8: (R, "Diagnostics"), 11: (R, "Get Comm Event Counter"),
    12: (R, "Get Comm Event Log"), 15: (A, "Write Multiple Coils"),
    16: (A, "Write Multiple Registers"), 17: (D, "Report Server ID"), 20: (R, "Read File Record"),
    21: (A, "Write File Record"), 22: (A, "Mask Write Register"),
    23: (A, "Read/Write Multiple Registers"), 24: (R, "Read FIFO Queue"),
    43: (N, "Encapsulated Interface Transport"), 90: (P, "UMAS"),
}
MODBUS_DIAG: dict[int, tuple[int, str]] = {  # FC 8 sub-function
    0: (R, "Diagnostics: Return Query Data"),
    1: (A, "Diagnostics: Restart Communications Option"),
    2: (R, "Diagnostics: Return Diagnostic Register"),
    4: (A, "Diagnostics: Force Listen Only Mode"),
    10: (A, "Diagnostics: Clear Counters and Diagnostic Register"),
}
MODBUS_MEI: dict[int, tuple[int, str]] = {
    13: (N, "CANopen General Reference"), 14: (D, "Read Device Identification"),
}
UMAS: dict[int, tuple[int, str]] = {
    0x01: (D, "UMAS Init Comm"), 0x02: (D, "UMAS Read ID"), 0x03: (D, "UMAS Read Project Info"),
    0x04: (D, "UMAS Read PLC Info"), 0x06: (D, "UMAS Read Card Info"),
    0x0A: (N, "UMAS Repeat"), 0x10: (A, "UMAS Take PLC Reservation"),
    0x11: (A, "UMAS Release PLC Reservation"), 0x12: (N, "UMAS Keep Alive"),
    0x20: (R, "UMAS Read Memory Block"), 0x22: (R, "UMAS Read Variables"),
    0x23: (A, "UMAS Write Variables"), 0x24: (R, "UMAS Read Coils/Registers"),
    0x25: (A, "UMAS Write Coils/Registers"), 0x26: (D, "UMAS Enable Data Dictionary"),
    0x30: (P, "UMAS Initialize Upload"), 0x31: (P, "UMAS Upload Block"),
    0x32: (P, "UMAS End Upload"), 0x33: (P, "UMAS Initialize Download"),
    0x34: (P, "UMAS Download Block"), 0x35: (P, "UMAS End Download"),
    0x39: (R, "UMAS Read ETH Master Data"), 0x40: (A, "UMAS Start PLC"), 0x41: (A, "UMAS Stop PLC"),
    0x50: (R, "UMAS Monitor PLC"), 0x58: (R, "UMAS Check PLC"), 0x70: (R, "UMAS Read IO Object"),
    0x71: (A, "UMAS Write IO Object"), 0x73: (N, "UMAS Get Status Module"),
}

# ---------------------------------------------------------------------------------------------
# S7comm (packet-s7comm.c param_functionnames, userdata groups, pi_service_names)
S7_FUNC: dict[int, tuple[int, str]] = {
    0x00: (N, "CPU services"), 0xF0: (N, "Setup Communication"), 0x04: (R, "Read Var"),
    0x05: (A, "Write Var"), 0x1A: (P, "Request Download"), 0x1B: (P, "Download Block"),
    0x1C: (P, "Download Ended"), 0x1D: (P, "Start Upload"), 0x1E: (P, "Upload"),
    0x1F: (P, "End Upload"), 0x28: (A, "PI Service"), 0x29: (A, "PLC Stop"),
}
S7_PI: dict[str, tuple[int, str]] = {
    "P_PROGRAM": (A, "PLC Start (P_PROGRAM)"), "_MODU": (A, "Copy RAM to ROM (_MODU)"),
    "_GARB": (A, "Compress Memory (_GARB)"), "_N_LOGIN_": (A, "Login (_N_LOGIN_)"),
    "_INSE": (P, "Activate Block (_INSE)"), "_INS2": (P, "Activate Block (_INS2)"),
    "_DELE": (P, "Delete Block (_DELE)"), "_EXTMODU": (A, "Copy RAM to ROM (_EXTMODU)"),
}
# Userdata group 0 (mode-transition pushes) is keyed as this pseudo group: 0 << 8 would collide
# with the Job functions, and real groups are 4 bits (0x10 never occurs).
S7_MODE_TRANSITION = 0x10
S7_UD_GROUP_NAMES = {S7_MODE_TRANSITION: "Mode-transition", 1: "Programmer commands", 2: "Cyclic data", 3: "Block functions",
                     4: "CPU functions", 5: "Security", 6: "PBC BSEND/BRECV", 7: "Time functions",
                     0xF: "NC programming"}
# (group, subfunction) -> class, name; (group, None) is the default of a group.
S7_USERDATA: dict[tuple[int, int | None], tuple[int, str]] = {
    (1, 1): (R, "Request diag data (Type 1)"), (1, 2): (R, "Variable table (VarTab)"),
    (1, 0x0C): (A, "Erase (memory reset)"), (1, 0x0E): (R, "Read diag data"),
    (1, 0x08): (A, "Modify variable"), (1, 0x09): (A, "Force"),
    (1, 0x0F): (N, "Remove diag data"), (1, 0x13): (R, "Request diag data (Type 2)"),
    (1, None): (N, "Programmer command"),
    (2, None): (R, "Cyclic data"),
    (3, 1): (D, "List blocks"), (3, 2): (D, "List blocks of type"), (3, 3): (D, "Get block info"),
    (3, None): (D, "Block function"),
    (4, 1): (D, "Read SZL"), (4, 2): (N, "Message service"), (4, 3): (N, "Diagnostic message"),
    (4, None): (N, "CPU function"),
    (5, 1): (A, "PLC password"), (5, 2): (A, "Clear PLC password"), (5, None): (N, "Security"),
    (7, 1): (D, "Read clock"), (7, 2): (A, "Set clock"), (7, 3): (D, "Read clock (following)"),
    (7, 4): (A, "Set clock"), (7, None): (N, "Time function"),
    # the CPU reporting its new mode (packet-s7comm.c modetrans_param_subfunc_names): a state
    # change of the controller, whoever caused it
    **{(S7_MODE_TRANSITION, m): (A, f"PLC reports {name} (mode transition)") for m, name in (
        (0, "STOP"), (1, "Warm Restart"), (2, "RUN"), (3, "Hot Restart"), (4, "HOLD"), (6, "Cold Restart"),
        (9, "RUN_R"), (11, "LINK-UP"), (12, "UPDATE"))},
    (S7_MODE_TRANSITION, None): (A, "PLC reports a mode transition"),
}
S7PLUS: dict[int, tuple[int, str]] = {
    0x04BB: (D, "Explore"), 0x04CA: (P, "CreateObject"), 0x04D4: (P, "DeleteObject"),
    0x04F2: (A, "SetVariable"), 0x0524: (N, "Error"), 0x0542: (A, "SetMultiVariables"),
    0x054C: (R, "GetMultiVariables"), 0x0556: (P, "BeginSequence"), 0x0560: (P, "EndSequence"),
    0x056B: (N, "Invoke"), 0x0586: (R, "GetVarSubStreamed"),
}

# ---------------------------------------------------------------------------------------------
# DNP3 application function codes
DNP3_FUNC: dict[int, tuple[int, str]] = {
    0: (R, "Confirm"), 1: (R, "Read"), 2: (A, "Write"), 3: (A, "Select"), 4: (A, "Operate"),
    5: (A, "Direct Operate"), 6: (A, "Direct Operate No Ack"), 7: (A, "Immediate Freeze"),
    8: (A, "Immediate Freeze No Ack"), 9: (A, "Freeze and Clear"),
    10: (A, "Freeze and Clear No Ack"), 11: (A, "Freeze With Time"),
    12: (A, "Freeze With Time No Ack"), 13: (A, "Cold Restart"), 14: (A, "Warm Restart"),
    15: (A, "Initialize Data"), 16: (A, "Initialize Application"), 17: (A, "Start Application"),
    18: (A, "Stop Application"), 19: (A, "Save Configuration"),
    20: (A, "Enable Unsolicited"), 21: (A, "Disable Unsolicited"), 22: (A, "Assign Class"),
    23: (N, "Delay Measurement"), 24: (A, "Record Current Time"), 25: (P, "Open File"),
    26: (P, "Close File"), 27: (P, "Delete File"), 28: (P, "Get File Info"),
    29: (P, "Authenticate File"), 30: (P, "Abort File"), 31: (N, "Activate Config"),
    32: (N, "Authentication Request"), 33: (N, "Authentication Request No Ack"),
    129: (R, "Response"), 130: (R, "Unsolicited Response"), 131: (N, "Authentication Response"),
}

# ---------------------------------------------------------------------------------------------
# EtherNet/IP encapsulation commands, CIP services
ENIP_CMD: dict[int, tuple[int, str]] = {
    0x0000: (N, "NOP"), 0x0001: (D, "List Targets"),  # legacy (RSLinx) discovery: target list
    0x0004: (D, "List Services"), 0x0063: (D, "List Identity"),
    0x0064: (D, "List Interfaces"), 0x0065: (N, "Register Session"),
    0x0066: (N, "Unregister Session"), 0x006F: (N, "Send RR Data"),
    0x0070: (N, "Send Unit Data"), 0x0072: (N, "Indicate Status"), 0x0073: (N, "Cancel"),
}
# (class, service) first, then (None, service).
CIP: dict[tuple[int | None, int], tuple[int, str]] = {
    (None, 0x01): (R, "Get Attributes All"), (None, 0x02): (A, "Set Attributes All"),
    (None, 0x03): (R, "Get Attribute List"), (None, 0x04): (A, "Set Attribute List"),
    (None, 0x05): (A, "Reset"), (None, 0x06): (A, "Start"), (None, 0x07): (A, "Stop"),
    (None, 0x08): (A, "Create"), (None, 0x09): (A, "Delete"),
    (None, 0x0A): (N, "Multiple Service Packet"), (None, 0x0E): (R, "Get Attribute Single"),
    (None, 0x10): (A, "Set Attribute Single"), (None, 0x4C): (R, "Read Tag"),
    (None, 0x4D): (A, "Write Tag"), (None, 0x4E): (A, "Read Modify Write Tag"),
    (None, 0x52): (R, "Read Tag Fragmented"), (None, 0x53): (A, "Write Tag Fragmented"),
    (None, 0x55): (D, "Get Instance Attribute List"),
    (0x01, 0x01): (D, "Identity: Get Attributes All"),
    (0x01, 0x0E): (D, "Identity: Get Attribute Single"),
    (0x01, 0x05): (A, "Identity: Reset"),
    (0x06, 0x52): (N, "Unconnected Send"), (0x06, 0x54): (N, "Forward Open"),
    (0x06, 0x5B): (N, "Large Forward Open"), (0x06, 0x4E): (N, "Forward Close"),
    (0x37, 0x4B): (P, "File: Initiate Upload"), (0x37, 0x4C): (P, "File: Initiate Download"),
    (0x37, 0x4D): (P, "File: Initiate Partial Read"), (0x37, 0x4E): (P, "File: Initiate Partial Write"),
    (0x37, 0x4F): (P, "File: Upload Transfer"), (0x37, 0x50): (P, "File: Download Transfer"),
    (0x37, 0x51): (P, "File: Clear File"),
}

# ---------------------------------------------------------------------------------------------
# IEC 60870-5-104 type ids (ranges per the reference)
IEC104_TYPE: dict[int, tuple[int, str]] = {
    1: (R, "M_SP_NA_1 single-point"), 3: (R, "M_DP_NA_1 double-point"),
    5: (R, "M_ST_NA_1 step position"), 7: (R, "M_BO_NA_1 bitstring"),
    9: (R, "M_ME_NA_1 measured normalised"), 11: (R, "M_ME_NB_1 measured scaled"),
    13: (R, "M_ME_NC_1 measured float"), 15: (R, "M_IT_NA_1 integrated totals"),
    30: (R, "M_SP_TB_1 single-point CP56"), 31: (R, "M_DP_TB_1 double-point CP56"),
    36: (R, "M_ME_TF_1 measured float CP56"), 37: (R, "M_IT_TB_1 integrated totals CP56"),
    45: (A, "C_SC_NA_1 single command"), 46: (A, "C_DC_NA_1 double command"),
    47: (A, "C_RC_NA_1 regulating step"), 48: (A, "C_SE_NA_1 setpoint normalised"),
    49: (A, "C_SE_NB_1 setpoint scaled"), 50: (A, "C_SE_NC_1 setpoint float"),
    51: (A, "C_BO_NA_1 bitstring command"), 58: (A, "C_SC_TA_1 single command CP56"),
    59: (A, "C_DC_TA_1 double command CP56"), 60: (A, "C_RC_TA_1 regulating step CP56"),
    61: (A, "C_SE_TA_1 setpoint normalised CP56"), 62: (A, "C_SE_TB_1 setpoint scaled CP56"),
    63: (A, "C_SE_TC_1 setpoint float CP56"), 64: (A, "C_BO_TA_1 bitstring CP56"),
    70: (N, "M_EI_NA_1 end of initialisation"), 100: (D, "C_IC_NA_1 interrogation"),
    101: (D, "C_CI_NA_1 counter interrogation"), 102: (R, "C_RD_NA_1 read"),
    103: (A, "C_CS_NA_1 clock synchronisation"), 104: (N, "C_TS_NA_1 test"),
    105: (A, "C_RP_NA_1 reset process"), 106: (N, "C_CD_NA_1 delay acquisition"),
    107: (N, "C_TS_TA_1 test CP56"),
    110: (A, "P_ME_NA_1 parameter normalised"), 111: (A, "P_ME_NB_1 parameter scaled"),
    112: (A, "P_ME_NC_1 parameter float"), 113: (A, "P_AC_NA_1 parameter activation"),
    120: (P, "F_FR_NA_1 file ready"), 121: (P, "F_SR_NA_1 section ready"),
    122: (P, "F_SC_NA_1 call directory/file"), 123: (P, "F_LS_NA_1 last section"),
    124: (P, "F_AF_NA_1 ack file"), 125: (P, "F_SG_NA_1 segment"), 126: (P, "F_DR_TA_1 directory"),
    127: (P, "F_SC_NB_1 query log"),
}
for _t in range(1, 41):  # the other M_* types
    IEC104_TYPE.setdefault(_t, (R, f"M_* type {_t}"))
IEC104_U: dict[int, str] = {0x01: "STARTDT act", 0x02: "STARTDT con", 0x04: "STOPDT act",
                            0x08: "STOPDT con", 0x10: "TESTFR act", 0x20: "TESTFR con"}

# ---------------------------------------------------------------------------------------------
# BACnet services
BACNET_CONFIRMED: dict[int, tuple[int, str]] = {
    0: (N, "acknowledgeAlarm"), 1: (N, "confirmedCOVNotification"),
    2: (N, "confirmedEventNotification"), 3: (R, "getAlarmSummary"),
    4: (R, "getEnrollmentSummary"), 5: (R, "subscribeCOV"), 6: (R, "atomicReadFile"),
    7: (P, "atomicWriteFile"), 8: (A, "addListElement"), 9: (A, "removeListElement"),
    10: (A, "createObject"), 11: (A, "deleteObject"), 12: (R, "readProperty"),
    13: (R, "readPropertyConditional"), 14: (R, "readPropertyMultiple"),
    15: (A, "writeProperty"), 16: (A, "writePropertyMultiple"),
    17: (A, "deviceCommunicationControl"), 18: (N, "confirmedPrivateTransfer"),
    19: (N, "confirmedTextMessage"), 20: (A, "reinitializeDevice"), 21: (N, "vtOpen"),
    22: (N, "vtClose"), 23: (N, "vtData"), 26: (R, "readRange"), 27: (A, "lifeSafetyOperation"),
    28: (R, "subscribeCOVProperty"), 29: (R, "getEventInformation"),
}
BACNET_UNCONFIRMED: dict[int, tuple[int, str]] = {
    0: (N, "i-Am"), 1: (N, "i-Have"), 2: (N, "unconfirmedCOVNotification"),
    3: (N, "unconfirmedEventNotification"), 4: (N, "unconfirmedPrivateTransfer"),
    5: (N, "unconfirmedTextMessage"), 6: (A, "timeSynchronization"), 7: (D, "who-Has"),
    8: (D, "who-Is"), 9: (A, "utcTimeSynchronization"), 10: (N, "writeGroup"),
}

# ---------------------------------------------------------------------------------------------
# OPC UA service request node ids (opcua_serviceids.h, the *_Encoding_DefaultBinary ids)
OPCUA_SERVICE: dict[int, tuple[int, str]] = {
    422: (D, "FindServers"), 12208: (D, "FindServersOnNetwork"), 428: (D, "GetEndpoints"),
    446: (N, "OpenSecureChannel"), 452: (N, "CloseSecureChannel"), 461: (N, "CreateSession"),
    467: (N, "ActivateSession"), 473: (N, "CloseSession"), 479: (N, "Cancel"),
    488: (P, "AddNodes"), 494: (P, "AddReferences"), 500: (P, "DeleteNodes"),
    506: (P, "DeleteReferences"), 527: (D, "Browse"), 533: (D, "BrowseNext"),
    554: (D, "TranslateBrowsePathsToNodeIds"), 560: (N, "RegisterNodes"),
    566: (N, "UnregisterNodes"), 631: (R, "Read"), 664: (R, "HistoryRead"), 673: (A, "Write"),
    700: (A, "HistoryUpdate"), 712: (A, "Call"), 751: (R, "CreateMonitoredItems"),
    763: (R, "ModifyMonitoredItems"), 769: (N, "SetMonitoringMode"), 781: (N, "DeleteMonitoredItems"),
    787: (R, "CreateSubscription"), 793: (N, "ModifySubscription"), 799: (N, "SetPublishingMode"),
    826: (R, "Publish"), 832: (N, "Republish"), 847: (N, "DeleteSubscriptions"),
}
OPCUA_RESPONSE_NAMES = {k + 3: v[1] + " Response" for k, v in OPCUA_SERVICE.items()}


def _g(v: object) -> int | None:
    return None if v is None else int(v)  # type: ignore[arg-type]


def classify(app: int, code: int | None, sub: int | None, group: int | None,
             service: str | None) -> tuple[int, str]:
    """(class, name) of one operation key; (CLS_NONE, '') when nothing is known."""
    if app == APP_MODBUS and code is not None:
        if code == 8 and sub in MODBUS_DIAG:
            return MODBUS_DIAG[sub]
        if code == 43 and sub in MODBUS_MEI:
            return MODBUS_MEI[sub]
        if code == 90 and sub in UMAS:
            return UMAS[sub]
        return MODBUS_FC.get(code, (N, f"Function {code}"))
    if app == APP_S7 and code is not None:
        if code >= 0x100:
            grp, sf = code >> 8, code & 0xFF
            hit = S7_USERDATA.get((grp, sf)) or S7_USERDATA.get((grp, None))
            return hit or (N, f"Userdata {S7_UD_GROUP_NAMES.get(grp, grp)} sub {sf}")
        if code == 0x28 and service:
            return S7_PI.get(service, (A, f"PI Service {service}"))
        return S7_FUNC.get(code, (N, f"Function 0x{code:02X}"))
    if app == APP_S7PLUS:
        return S7PLUS.get(code, (N, "S7comm-plus")) if code is not None else (N, "S7comm-plus")
    if app == APP_DNP3 and code is not None:
        if code == 1 and sub == 0:
            return (D, "Read Device Attributes")
        return DNP3_FUNC.get(code, (N, f"Function {code}"))
    if app == APP_ENIP and code is not None:
        if sub is None:
            return ENIP_CMD.get(code, (N, f"Command 0x{code:04X}"))
        return CIP.get((group, code)) or CIP.get((None, code)) or (N, f"CIP Service 0x{code:02X}")
    if app == APP_IEC104:
        if group == 3:
            return (N, IEC104_U.get(sub or 0, "U-format"))
        if code is not None:
            return IEC104_TYPE.get(code, (N, f"Type {code}"))
    if app == APP_BACNET and code is not None:
        table = BACNET_UNCONFIRMED if sub == 1 else BACNET_CONFIRMED
        return table.get(code, (N, f"Service {code}"))
    if app == APP_OPCUA:
        if code is not None:
            if code in OPCUA_SERVICE:
                return OPCUA_SERVICE[code]
            if code in OPCUA_RESPONSE_NAMES:
                return (N, OPCUA_RESPONSE_NAMES[code])
            return (N, f"Service {code}")
        return (N, service or "")
    if app in (APP_MMS, APP_GOOSE, APP_PROFINET):
        return classify_61850(app, code, sub)
    return classify_plc(app, code, sub, group, service) or (N, "")


_KEYS = ["app", "code", "sub", "group", "service"]


def classify_ops(ops: pl.DataFrame) -> pl.DataFrame:
    """Fill `cls` and `name` of a whole OPS-like frame (one lookup per distinct key)."""
    if ops.height == 0:
        return ops.with_columns(pl.lit(None, OPS["cls"]).alias("cls"),
                                pl.lit(None, OPS["name"]).alias("name"))
    for k in _KEYS:
        if k not in ops.columns:
            ops = ops.with_columns(pl.lit(None, OPS[k]).alias(k))
    keys = ops.select(_KEYS).unique()
    cls, name = [], []
    for app, code, sub, group, service in keys.iter_rows():
        c, n = classify(int(app), _g(code), _g(sub), _g(group), service)
        cls.append(c)
        name.append(n)
    table = keys.with_columns(pl.Series("cls", cls, OPS["cls"]), pl.Series("name", name, OPS["name"]))
    base = ops.drop([c for c in ("cls", "name") if c in ops.columns])
    return base.join(table, on=_KEYS, how="left", nulls_equal=True, maintain_order="left")


def ops_frame(fast: dict[str, object] | None = None, slow: list[dict] | None = None) -> pl.DataFrame:
    """An OPS frame (plus `row`) from decoder output, classified.

    `fast` maps a column to a numpy array or to (array, valid mask) for the vectorised rows;
    `slow` is a list of per-op dicts (missing key = null) from the per-packet parsers.
    """
    schema = {"row": pl.Int64(), **{k: v for k, v in OPS.items() if k not in ("file_id", "frame")}}
    parts = []
    if fast and len(next(iter(fast.values()))[0] if isinstance(next(iter(fast.values())), tuple)
                    else next(iter(fast.values()))):
        exprs = []
        raw: dict[str, object] = {}
        for name, v in fast.items():
            if isinstance(v, tuple):
                raw[name], raw["__m_" + name] = v
                exprs.append(pl.when(pl.col("__m_" + name)).then(pl.col(name)).cast(schema[name])
                             .alias(name))
            else:
                raw[name] = v
                exprs.append(pl.col(name).cast(schema[name]))
        parts.append(pl.DataFrame(raw).select(exprs))
    if slow:
        present = set().union(*slow)
        cols = {k: [r.get(k) for r in slow] for k in schema if k in present}
        parts.append(pl.DataFrame(cols, schema={k: schema[k] for k in cols}))
    if not parts:
        return classify_ops(pl.DataFrame(schema=schema))
    df = pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]
    df = df.with_columns([pl.lit(None, schema[k]).alias(k) for k in schema if k not in df.columns])
    return classify_ops(df.select(list(schema))).sort("row", maintain_order=True)
