"""The operation taxonomy of IEC 61850 MMS, GOOSE and PROFINET DCP (see core/decode/ics.py for
how their op rows are keyed): codes to READ / DISCOVER / ACTION / REPROGRAM, with names."""

from __future__ import annotations

from plantwatch.core.decode.schema import (
    APP_GOOSE,
    APP_MMS,
    APP_PROFINET,
    CLS_ACTION,
    CLS_DISCOVER,
    CLS_NONE,
    CLS_READ,
    CLS_REPROGRAM,
)

R, D, A, P, N = CLS_READ, CLS_DISCOVER, CLS_ACTION, CLS_REPROGRAM, CLS_NONE

# IEC 61850 MMS (ISO 9506 ConfirmedServiceRequest choice numbers, mms.asn)
MMS_CONFIRMED: dict[int, tuple[int, str]] = {
    0: (D, "status"), 1: (D, "getNameList"), 2: (D, "identify"), 3: (A, "rename"), 4: (R, "read"),
    5: (A, "write"), 6: (D, "getVariableAccessAttributes"), 7: (A, "defineNamedVariable"),
    8: (A, "defineScatteredAccess"), 9: (D, "getScatteredAccessAttributes"),
    10: (A, "deleteVariableAccess"), 11: (A, "defineNamedVariableList"),
    12: (D, "getNamedVariableListAttributes"), 13: (A, "deleteNamedVariableList"),
    14: (A, "defineNamedType"), 15: (D, "getNamedTypeAttributes"), 16: (A, "deleteNamedType"),
    17: (R, "input"), 18: (A, "output"), 19: (A, "takeControl"), 20: (A, "relinquishControl"),
    21: (A, "defineSemaphore"), 22: (A, "deleteSemaphore"), 23: (R, "reportSemaphoreStatus"),
    24: (R, "reportPoolSemaphoreStatus"), 25: (R, "reportSemaphoreEntryStatus"),
    26: (P, "initiateDownloadSequence"), 27: (P, "downloadSegment"),
    28: (P, "terminateDownloadSequence"), 29: (P, "initiateUploadSequence"),
    30: (P, "uploadSegment"), 31: (P, "terminateUploadSequence"), 32: (P, "requestDomainDownload"),
    33: (P, "requestDomainUpload"), 34: (P, "loadDomainContent"), 35: (P, "storeDomainContent"),
    36: (P, "deleteDomain"), 37: (D, "getDomainAttributes"), 38: (P, "createProgramInvocation"),
    39: (P, "deleteProgramInvocation"), 40: (A, "start"), 41: (A, "stop"), 42: (A, "resume"),
    43: (A, "reset"), 44: (A, "kill"), 45: (D, "getProgramInvocationAttributes"),
    46: (P, "obtainFile"), 47: (A, "defineEventCondition"), 48: (A, "deleteEventCondition"),
    49: (D, "getEventConditionAttributes"), 50: (R, "reportEventConditionStatus"),
    51: (A, "alterEventConditionMonitoring"), 52: (A, "triggerEvent"), 53: (A, "defineEventAction"),
    54: (A, "deleteEventAction"), 55: (D, "getEventActionAttributes"),
    56: (R, "reportEventActionStatus"), 57: (A, "defineEventEnrollment"),
    58: (A, "deleteEventEnrollment"), 59: (A, "alterEventEnrollment"),
    60: (R, "reportEventEnrollmentStatus"), 61: (D, "getEventEnrollmentAttributes"),
    62: (N, "acknowledgeEventNotification"), 63: (R, "getAlarmSummary"),
    64: (R, "getAlarmEnrollmentSummary"), 65: (R, "readJournal"), 66: (A, "writeJournal"),
    67: (A, "initializeJournal"), 68: (R, "reportJournalStatus"), 69: (A, "createJournal"),
    70: (A, "deleteJournal"), 71: (D, "getCapabilityList"), 72: (R, "fileOpen"),
    73: (R, "fileRead"), 74: (N, "fileClose"), 75: (A, "fileRename"), 76: (P, "fileDelete"),
    77: (D, "fileDirectory"),
}
MMS_UNCONFIRMED: dict[int, tuple[int, str]] = {
    0: (R, "informationReport"), 1: (R, "unsolicitedStatus"), 2: (R, "eventNotification"),
}
MMS_PDU_NAMES = {0: "confirmed-Request", 1: "confirmed-Response", 2: "confirmed-Error", 3: "unconfirmed", 4: "reject", 5: "cancel-Request", 6: "cancel-Response",
                 7: "cancel-Error", 8: "initiate-Request", 9: "initiate-Response",
                 10: "initiate-Error", 11: "conclude-Request", 12: "conclude-Response",
                 13: "conclude-Error"}

# GOOSE: one op per PDU; the code says what the PDU means for its control block's sequence.
GOOSE_PUBLISH, GOOSE_STATE_CHANGE, GOOSE_SEQ_BACK, GOOSE_NEW_PUBLISHER = 0, 1, 2, 3
GOOSE_CODES: dict[int, tuple[int, str]] = {
    GOOSE_PUBLISH: (R, "GOOSE publish"),
    GOOSE_STATE_CHANGE: (R, "GOOSE state change"),
    # an old (stNum, sqNum) again: a replay, or a second publisher injecting frames
    GOOSE_SEQ_BACK: (A, "GOOSE sequence went backwards"),
    # the control block published from another MAC with a jump in stNum: a spoofed publisher
    GOOSE_NEW_PUBLISHER: (A, "GOOSE state jump from a new publisher"),
}

# PROFINET DCP service ids; (service, first block option/suboption) first.
PN_DCP_SERVICE: dict[int, tuple[int, str]] = {
    3: (R, "DCP Get"), 4: (A, "DCP Set"), 5: (D, "DCP Identify"), 6: (D, "DCP Hello"),
}
PN_DCP_SET: dict[int, tuple[int, str]] = {
    0x0102: (A, "DCP Set IP"), 0x0103: (A, "DCP Set IP (full suite)"),
    0x0202: (A, "DCP Set name of station"), 0x0501: (A, "DCP Set start transaction"),
    0x0502: (A, "DCP Set end transaction"), 0x0503: (A, "DCP Set signal (flash LED)"),
    0x0505: (A, "DCP Set reset factory settings"), 0x0506: (A, "DCP Set reset to factory"),
}


def classify_61850(app: int, code: int | None, sub: int | None) -> tuple[int, str]:
    if app == APP_MMS:
        if sub == 3 and code is not None:
            return MMS_UNCONFIRMED.get(code, (N, f"unconfirmed {code}"))
        if sub in (0, 1) and code is not None:
            return MMS_CONFIRMED.get(code, (N, f"service {code}"))
        return (N, MMS_PDU_NAMES.get(sub if sub is not None else -1, "MMS"))
    if app == APP_GOOSE and code is not None:
        return GOOSE_CODES.get(code, (N, "GOOSE"))
    if app == APP_PROFINET and code is not None:
        sid, resp = code >> 8, code & 1
        if sid == 4 and sub in PN_DCP_SET:
            c, name = PN_DCP_SET[sub]
        else:
            c, name = PN_DCP_SERVICE.get(sid, (N, f"DCP service {sid}"))
        return (c, name + " response" if resp else name)
    return (N, "")
