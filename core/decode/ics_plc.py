"""The operation taxonomy of the controller protocols: FINS, ADS/AMS, MELSEC MC, HART-IP, C37.118.

Data only, as core/decode/ics.py (which delegates here and re-exports `PLC_PORTS`). Op keys:

- FINS: code = command (MRC << 8 | SRC, 0x0101 Memory Area Read ...).
- ADS: code = ADS command id (2 Read ... 9 ReadWrite); WriteControl: sub = the requested ADS
  state (5 RUN, 6 STOP, 15 CONFIG ...). Route discovery on UDP 48899: group = 1, code = service
  id without the response bit (1 discovery, 6 add route).
- MELSEC MC / SLMP: code = command (0x0401 Batch Read ...), sub = subcommand; a response carries
  no command (code null). service = 'MELSOFT' for the engineering protocol of GX Works, whose
  commands are not published: it is recognised, not classified.
- HART-IP: code = message id (0 session initiate ... 3 token-passing PDU); sub = HART command
  number of a token-passing PDU.
- C37.118: code = frame type (0 data, 1 header, 2 CFG-1, 3 CFG-2, 4 command, 5 CFG-3); command
  frames: sub = command (1 data off, 2 data on, 3 send header, 4 CFG-1, 5 CFG-2, 6 CFG-3).
"""

from __future__ import annotations

from plantwatch.core.decode.schema import (
    APP_ADS,
    APP_C37118,
    APP_FINS,
    APP_HARTIP,
    APP_MELSEC,
    CLS_ACTION,
    CLS_DISCOVER,
    CLS_NONE,
    CLS_READ,
    CLS_REPROGRAM,
)

R, D, A, P, N = CLS_READ, CLS_DISCOVER, CLS_ACTION, CLS_REPROGRAM, CLS_NONE

# MC/SLMP has no standard port (decoded on any port, core/decode/melsec.py); these are the ports
# of the MELSOFT engineering connection of iQ-F (FX5) controllers
MELSOFT_TCP, MELSOFT_UDP = 5562, 5560
PLC_PORTS: dict[int, dict[int, frozenset[int]]] = {
    APP_FINS: {6: frozenset({9600}), 17: frozenset({9600})},
    APP_ADS: {6: frozenset({48898}), 17: frozenset({48899})},
    APP_MELSEC: {6: frozenset({MELSOFT_TCP}), 17: frozenset({MELSOFT_UDP})},
    APP_HARTIP: {6: frozenset({5094}), 17: frozenset({5094})},
    APP_C37118: {6: frozenset({4712}), 17: frozenset({4713})},
}

# Omron FINS commands (W342 FINS command reference; Wireshark packet-omron-fins.c)
FINS: dict[int, tuple[int, str]] = {
    0x0101: (R, "Memory Area Read"), 0x0102: (A, "Memory Area Write"),
    0x0103: (A, "Memory Area Fill"), 0x0104: (R, "Multiple Memory Area Read"),
    0x0105: (A, "Memory Area Transfer"), 0x0201: (R, "Parameter Area Read"),
    0x0202: (A, "Parameter Area Write"), 0x0203: (A, "Parameter Area Clear"),
    0x0304: (A, "Program Area Protect"), 0x0305: (A, "Program Area Protect Clear"),
    0x0306: (P, "Program Area Read"), 0x0307: (P, "Program Area Write"),
    0x0308: (P, "Program Area Clear"), 0x0401: (A, "Run (Start)"), 0x0402: (A, "Stop"),
    0x0501: (D, "Controller Data Read"), 0x0502: (D, "Connection Data Read"),
    0x0601: (R, "Controller Status Read"), 0x0620: (R, "Cycle Time Read"),
    0x0701: (D, "Clock Read"), 0x0702: (A, "Clock Write"), 0x0920: (N, "Message Read/Clear"),
    0x0C01: (A, "Access Right Acquire"), 0x0C02: (A, "Access Right Forced Acquire"),
    0x0C03: (A, "Access Right Release"), 0x2101: (A, "Error Clear"),
    0x2102: (R, "Error Log Read"), 0x2103: (A, "Error Log Clear"),
    0x2201: (D, "File Name Read"), 0x2202: (P, "Single File Read"),
    0x2203: (P, "Single File Write"), 0x2204: (P, "File Memory Format"),
    0x2205: (P, "File Delete"), 0x2207: (P, "File Copy"), 0x2208: (P, "File Name Change"),
    0x220A: (P, "Memory Area File Transfer"), 0x220B: (P, "Parameter Area File Transfer"),
    0x220C: (P, "Program Area File Transfer"), 0x2215: (P, "Create/Delete Directory"),
    0x2301: (A, "Forced Set/Reset"), 0x2302: (A, "Forced Set/Reset Cancel"),
}

# Beckhoff ADS commands (Beckhoff Information System, ADS specification)
ADS: dict[int, tuple[int, str]] = {
    0: (N, "Invalid"), 1: (D, "Read Device Info"), 2: (R, "Read"), 3: (A, "Write"),
    4: (R, "Read State"), 5: (A, "Write Control"), 6: (R, "Add Device Notification"),
    7: (N, "Delete Device Notification"), 8: (R, "Device Notification"), 9: (A, "Read Write"),
}
ADS_STATE = {0: "INVALID", 1: "IDLE", 2: "RESET", 3: "INIT", 4: "START", 5: "RUN, start", 6: "STOP",
             7: "SAVECFG", 8: "LOADCFG", 9: "POWERFAILURE", 10: "POWERGOOD", 11: "ERROR",
             12: "SHUTDOWN", 13: "SUSPEND", 14: "RESUME", 15: "CONFIG", 16: "RECONFIG"}
ADS_UDP: dict[int, tuple[int, str]] = {1: (D, "Route Discovery"), 6: (A, "Add Route"),
                                      7: (A, "Delete Route")}

# MELSEC MC protocol / SLMP commands (MELSEC Communication Protocol Reference Manual SH-080008,
# SLMP Reference Manual SH-080956)
MELSEC: dict[int, tuple[int, str]] = {
    0x0401: (R, "Batch Read"), 0x1401: (A, "Batch Write"), 0x0403: (R, "Random Read"),
    0x1402: (A, "Random Write"), 0x0406: (R, "Batch Read Multiple Blocks"),
    0x1406: (A, "Batch Write Multiple Blocks"), 0x0801: (R, "Monitor Register"),
    0x0802: (R, "Monitor"), 0x0601: (R, "Read Buffer Memory"), 0x1601: (A, "Write Buffer Memory"),
    0x0613: (R, "Read Intelligent Module Buffer"), 0x1613: (A, "Write Intelligent Module Buffer"),
    0x1001: (A, "Remote Run (Start)"), 0x1002: (A, "Remote Stop"), 0x1003: (A, "Remote Pause"),
    0x1005: (A, "Remote Latch Clear"), 0x1006: (A, "Remote Reset"),
    0x0101: (D, "Read CPU Model"), 0x0619: (N, "Loopback Test"), 0x1617: (A, "Clear Error"),
    0x1630: (A, "Remote Password Unlock"), 0x1631: (A, "Remote Password Lock"),
    0x1810: (D, "Read Directory/File"), 0x1811: (D, "Search Directory/File"),
    0x1820: (P, "New File"), 0x1822: (P, "Delete File"), 0x1824: (P, "Copy File"),
    0x1825: (P, "Modify File Attribute"), 0x1826: (P, "Modify File Date"),
    0x1827: (P, "Open File"), 0x1828: (P, "Read File"), 0x1829: (P, "Write File"),
    0x182A: (N, "Close File"),
}

# HART-IP message ids, and HART universal / common-practice command numbers
HARTIP_MSG: dict[int, tuple[int, str]] = {
    0: (N, "Session Initiate"), 1: (N, "Session Close"), 2: (N, "Keep Alive"),
    3: (N, "Token-Passing PDU"), 4: (N, "Direct PDU"), 128: (R, "Read Audit Log"),
}
HART_CMD: dict[int, tuple[int, str]] = {
    0: (D, "Read Unique Identifier"), 1: (R, "Read Primary Variable"),
    2: (R, "Read Loop Current and Percent of Range"), 3: (R, "Read Dynamic Variables"),
    6: (A, "Write Polling Address"), 7: (R, "Read Loop Configuration"),
    8: (R, "Read Dynamic Variable Classifications"), 9: (R, "Read Device Variables with Status"),
    11: (D, "Read Unique Identifier by Tag"), 12: (R, "Read Message"),
    13: (R, "Read Tag, Descriptor, Date"), 14: (R, "Read PV Transducer Information"),
    15: (R, "Read Device Information"), 16: (R, "Read Final Assembly Number"),
    17: (A, "Write Message"), 18: (A, "Write Tag, Descriptor, Date"),
    19: (A, "Write Final Assembly Number"), 20: (R, "Read Long Tag"),
    21: (D, "Read Unique Identifier by Long Tag"), 22: (A, "Write Long Tag"),
    33: (R, "Read Device Variables"), 34: (A, "Write PV Damping Value"),
    35: (A, "Write PV Range Values"), 36: (A, "Set PV Upper Range Value"),
    37: (A, "Set PV Lower Range Value"), 38: (A, "Reset Configuration Changed Flag"),
    40: (A, "Enter/Exit Fixed Current Mode"), 41: (A, "Perform Self Test"),
    42: (A, "Perform Device Reset"), 43: (A, "Set PV Zero"), 44: (A, "Write PV Units"),
    45: (A, "Trim Loop Current Zero"), 46: (A, "Trim Loop Current Gain"),
    47: (A, "Write PV Transfer Function"), 48: (R, "Read Additional Device Status"),
    49: (A, "Write PV Transducer Serial Number"), 50: (R, "Read Dynamic Variable Assignments"),
    51: (A, "Write Dynamic Variable Assignments"), 53: (A, "Write Device Variable Units"),
    54: (R, "Read Device Variable Information"), 59: (A, "Write Number of Response Preambles"),
    74: (D, "Read I/O System Capabilities"), 77: (N, "Send Command to Sub-Device"),
    79: (A, "Write Device Variable"),
}

# IEEE C37.118.2 frame types and commands
C37_FRAME: dict[int, tuple[int, str]] = {
    0: (R, "Data Frame"), 1: (D, "Header Frame"), 2: (D, "Configuration Frame 1"),
    3: (D, "Configuration Frame 2"), 5: (D, "Configuration Frame 3"),
}
C37_CMD: dict[int, tuple[int, str]] = {
    1: (A, "Turn Off Data Transmission"), 2: (A, "Turn On Data Transmission"),
    3: (D, "Send Header Frame"), 4: (D, "Send CFG-1 Frame"), 5: (D, "Send CFG-2 Frame"),
    6: (D, "Send CFG-3 Frame"), 8: (N, "Extended Frame"),
}


def classify_plc(app: int, code: int | None, sub: int | None, group: int | None,
                 service: str | None) -> tuple[int, str] | None:
    """(class, name) of an op of these protocols; None when `app` is not one of them."""
    if app == APP_FINS:
        if code is None:
            return (N, "FINS")
        return FINS.get(code, (N, f"FINS Command 0x{code:04X}"))
    if app == APP_ADS:
        if code is None:
            return (N, "AMS")
        if group == 1:
            return ADS_UDP.get(code, (N, f"ADS/UDP Service {code}"))
        if code == 5 and sub is not None:
            return (A, f"Write Control ({ADS_STATE.get(sub, sub)})")
        return ADS.get(code, (N, f"ADS Command {code}"))
    if app == APP_MELSEC:
        if service == "MELSOFT":
            return (N, "MELSOFT message")
        if code is None:
            return (N, "MC Response")
        return MELSEC.get(code, (N, f"MC Command 0x{code:04X}"))
    if app == APP_HARTIP:
        if code == 3 and sub is not None:
            return HART_CMD.get(sub, (N, f"HART Command {sub}"))
        return HARTIP_MSG.get(code, (N, f"HART-IP Message {code}")) if code is not None else (N, "HART-IP")
    if app == APP_C37118:
        if code == 4:
            return C37_CMD.get(sub, (N, f"Command {sub}")) if sub is not None else (N, "Command Frame")
        return C37_FRAME.get(code, (N, f"Frame Type {code}")) if code is not None else (N, "C37.118")
    return None
