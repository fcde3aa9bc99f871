"""Differential test of the IEC 61850 (MMS, GOOSE) and PROFINET decoders against tshark, frame by
frame, on the real captures (tests/data/real/NOTICE.md). The helpers and conventions are those of
tests/test_tshark_ics.py: tshark's occurrences of a field joined with ',' in PDU order against
the same string built from our ops (or packet columns) of that frame; exclusions are per frame,
with their reason.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.decode import Decoder
from plantwatch.core.decode.schema import APP_GOOSE, APP_MMS, APP_PROFINET
from tests.oracle import needs_tshark
from tests.oracle import tshark_fields as _tshark_fields
from tests.test_tshark_ics import (
    REAL,
    Spec,
    _first,
    _fmt,
    check,
    field,
    hexfmt,
    ops_by_frame,
    retransmissions,
)

pytestmark = needs_tshark


@cache
def _tshark_all(path: Path) -> dict[int, dict[str, str]]:
    return _tshark_fields(path, ALL_FIELDS)


def tshark_fields(path: Path, fields: list[str]) -> dict[int, dict[str, str]]:
    return {f: {k: v[k] for k in fields} for f, v in _tshark_all(path).items()}


@cache
def decode_file(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    from plantwatch.core.capture.files import read_batches

    dec = Decoder()
    parts = [dec.decode(b) for b in read_batches([path], chunk_packets=4096)]
    return pl.concat([d.packets for d in parts]), pl.concat([d.ops for d in parts])


def compare(path: Path, specs: dict[str, Spec], app: int,
            exclude: dict[int, str] | None = None) -> tuple[dict[str, int], list[str]]:
    """As tests/test_tshark_ics.compare, over this file's tshark fields."""
    exclude = {**retransmissions(path), **(exclude or {})}
    _, ops = decode_file(path)
    mine = ops_by_frame(ops.filter(pl.col("app") == app))
    counts = dict.fromkeys(specs, 0)
    bad: list[str] = []
    for frame, fields in tshark_fields(path, list(specs)).items():
        if frame in exclude:
            continue
        for name, spec in specs.items():
            get, norm = spec if isinstance(spec, tuple) else (spec, None)
            want = norm(fields[name]) if norm else fields[name]
            ours = ",".join(_fmt(v) for v in (get(op) for op in mine.get(frame, [])) if v is not None)
            if ours != want:
                bad.append(f"{path.name} frame {frame} {name}: tshark {want!r} ours {ours!r}")
            elif ours:
                counts[name] += 1
    return counts, bad

MMS_FILES = sorted(p.name for p in REAL.glob("IEC61850_*.pcap"))
MMS_COMMAND_FILES = [n for n in MMS_FILES if "Specific_Commands" in n]


# --------------------------------------------------------------------------------------------
# MMS
def _has(op: dict, *subs: int) -> bool:
    return op["sub"] in subs


MMS_SPECS: dict[str, Spec] = {
    "mms.confirmedServiceRequest": field("code", lambda op: _has(op, 0)),
    "mms.confirmedServiceResponse": field("code", lambda op: _has(op, 1)),
    "mms.unconfirmedService": field("code", lambda op: _has(op, 3)),
    "mms.invokeID": field("trans", lambda op: _has(op, 0, 1, 2)),
    "mms.programInvocationName": field("service", lambda op: op["code"] in range(38, 45)
                                       and _has(op, 0)),
}
OBJECT_NAME_SERVICES = (4, 5, 6, 11, 12, 13, 19, 20)  # those naming an ObjectName
# tshark lists every variable of a request: we keep the first (the object the op names).
MMS_NAME_SPECS: dict[str, Spec] = {
    "mms.domainId": (field("domain", lambda op: _has(op, 0) and op["code"] in OBJECT_NAME_SERVICES),
                     _first),
    "mms.itemId": (field("service", lambda op: _has(op, 0) and op["domain"] is not None), _first),
    "mms.vmd_specific": (field("service", lambda op: _has(op, 0) and op["domain"] is None
                               and op["code"] in OBJECT_NAME_SERVICES), _first),
    "mms.domainName": field("domain", lambda op: _has(op, 0) and op["code"] in (26, 28, 32, 33, 34, 35)),
}


def mms_exclusions(path: Path) -> dict[int, str]:
    """Frames where tshark stops above MMS: the presentation layer of an association that started
    before the capture (tshark only maps a presentation context to MMS when it saw the context
    negotiated in the CP/CPA; the frame shows 'pres' with no 'mms': 23 frames of the sample file),
    or a CPA tshark 4.0 flags malformed (frame 10 of the three iec61850_* captures, where we find no
    MMS PDU either); and an MMS PDU straight after COTP that tshark's heuristic does not take (a
    lone conclude-Request, '8b 00': too short for it)."""
    out = {}
    for f, v in tshark_fields(path, ["frame.protocols", "tcp.len"]).items():
        protos = v["frame.protocols"].split(":")
        if "pres" in protos and "mms" not in protos:
            out[f] = "tshark stops at the presentation layer"
        elif "cotp" in protos and "mms" not in protos and "ses" not in protos and v["tcp.len"] == "9":
            out[f] = "conclude-Request straight after COTP (tshark's MMS heuristic skips it)"
    return out


@pytest.mark.parametrize("name", MMS_FILES)
def test_mms(name: str) -> None:
    path = REAL / name
    excl = mms_exclusions(path)
    counts, bad = compare(path, MMS_SPECS, APP_MMS, excl)
    check(counts, bad, ())
    counts2, bad2 = compare(path, MMS_NAME_SPECS, APP_MMS, excl)
    check(counts2, bad2, ())
    # an MMS op exactly where tshark sees MMS
    _, ops = decode_file(path)
    ours = set(ops.filter(pl.col("app") == APP_MMS)["frame"].to_list())
    theirs = {f for f, v in tshark_fields(path, ["frame.protocols"]).items()
              if "mms" in v["frame.protocols"].split(":")}
    excl |= retransmissions(path)
    assert ours - set(excl) == theirs - set(excl), (sorted(ours - set(excl) - theirs), sorted(theirs - ours))


def test_mms_compares_every_service() -> None:
    """The command captures hold start, stop, kill, getNameList, read, write, takeControl and
    initiateDownloadSequence: each is compared at least once, with its name."""
    seen: dict[str, int] = {}
    for name in MMS_FILES:
        counts, _ = compare(REAL / name, {**MMS_SPECS, **MMS_NAME_SPECS}, APP_MMS,
                            mms_exclusions(REAL / name))
        for k, v in counts.items():
            seen[k] = seen.get(k, 0) + v
    assert all(seen[k] > 0 for k in ("mms.confirmedServiceRequest", "mms.confirmedServiceResponse",
                                     "mms.invokeID", "mms.programInvocationName", "mms.domainId",
                                     "mms.itemId", "mms.vmd_specific", "mms.domainName")), seen
    codes = set()
    for name in MMS_COMMAND_FILES:
        _, ops = decode_file(REAL / name)
        codes |= set(ops.filter((pl.col("app") == APP_MMS) & (pl.col("sub") == 0))["code"].to_list())
    assert {1, 4, 5, 19, 26, 40, 41, 44} <= codes


def test_mms_classes() -> None:
    _, ops = decode_file(REAL / "IEC61850_MMS_Specific_Commands_mms-killRequest.pcap")
    kill = ops.filter((pl.col("app") == APP_MMS) & (pl.col("code") == 44))
    assert kill.select("cls", "name", "service").row(0) == (3, "kill", "R395024397Application_1")
    _, ops = decode_file(REAL / "IEC61850_MMS_Specific_Commands_mms-initiateDownloadSequence.pcap")
    assert ops.filter(pl.col("code") == 26)["cls"].to_list() == [4]  # REPROGRAM


# --------------------------------------------------------------------------------------------
# Per-packet columns (GOOSE, PROFINET) against tshark
def compare_packets(path: Path, specs: dict[str, tuple[str, object]]) -> tuple[dict[str, int], list[str]]:
    packets, _ = decode_file(path)
    ours = {r["frame"]: r for r in packets.iter_rows(named=True)}
    counts = dict.fromkeys(specs, 0)
    bad = []
    for frame, v in tshark_fields(path, list(specs)).items():
        for f, (col, fmt) in specs.items():
            val = ours[frame][col]
            got = "" if val is None else fmt(val)  # type: ignore[operator]
            if got != v[f]:
                bad.append(f"{path.name} frame {frame} {f}: tshark {v[f]!r} ours {got!r}")
            elif got:
                counts[f] += 1
    return counts, bad


GOOSE_SPECS = {
    "goose.appid": ("goose_appid", hexfmt(4)), "goose.gocbRef": ("goose_gocb", str),
    "goose.datSet": ("goose_dataset", str), "goose.goID": ("goose_id", str),
    "goose.stNum": ("goose_stnum", str), "goose.sqNum": ("goose_sqnum", str),
    "goose.simulation": ("goose_simulation", lambda v: str(int(v))),
    "goose.confRev": ("goose_confrev", str),
}


@pytest.mark.parametrize("name", ["IEC61850_GOOSE_GOOSE.pcap", "IEC61850_GOOSE_Sample_File_GOOSE.pcap",
                                  "IEC61850_Sample_File_MMS_and_GOOSE.pcap"])
def test_goose(name: str) -> None:
    counts, bad = compare_packets(REAL / name, GOOSE_SPECS)
    check(counts, bad, tuple(GOOSE_SPECS))


def test_goose_ops_follow_the_sequence() -> None:
    """Every GOOSE frame is one op; a state change is exactly a frame whose stNum went up."""
    path = REAL / "IEC61850_GOOSE_Sample_File_GOOSE.pcap"
    _, ops = decode_file(path)
    g = ops.filter(pl.col("app") == APP_GOOSE)
    t = _tshark_fields(path, ["goose.gocbRef", "goose.stNum"])
    assert g.height == sum(1 for v in t.values() if v["goose.gocbRef"])
    last: dict[str, int] = {}
    changes = set()
    for f, v in sorted(t.items()):
        st = int(v["goose.stNum"])
        if v["goose.gocbRef"] in last and st > last[v["goose.gocbRef"]]:
            changes.add(f)
        last[v["goose.gocbRef"]] = st
    assert set(g.filter(pl.col("code") == 1)["frame"].to_list()) == changes
    assert changes and g.filter(pl.col("code") >= 2).height == 0


PN_SPECS = {
    "pn_rt.frame_id": ("pn_frame_id", str),
    "pn_dcp.suboption_device_nameofstation": ("pn_station", str),
    "pn_dcp.suboption_vendor_id": ("pn_vendor_id", hexfmt(4)),
    "pn_dcp.suboption_device_id": ("pn_device_id", hexfmt(4)),
    "pn_dcp.suboption_ip_ip": ("pn_ip", lambda v: ".".join(str((v >> s) & 255) for s in (24, 16, 8, 0))),
}
PN_OP_SPECS: dict[str, Spec] = {
    "pn_dcp.service_id": lambda op: op["code"] >> 8,
    "pn_dcp.service_type": lambda op: op["code"] & 0xFF,
    "pn_dcp.xid": field("ref", fmt=hexfmt(8)),
    "pn_dcp.option": (lambda op: None if op["sub"] is None else op["sub"] >> 8, _first),
}
PN_FILES = sorted(p.name for p in REAL.glob("profinet_*.pcap"))


@pytest.mark.parametrize("name", PN_FILES)
def test_profinet(name: str) -> None:
    counts, bad = compare_packets(REAL / name, PN_SPECS)
    check(counts, bad, ("pn_rt.frame_id", "pn_dcp.suboption_device_nameofstation"))
    counts, bad = compare(REAL / name, PN_OP_SPECS, APP_PROFINET)
    check(counts, bad, tuple(PN_OP_SPECS))


def test_profinet_dcp_set_ip_is_action() -> None:
    _, ops = decode_file(REAL / "profinet_PROFINET-RT-DCP_ChangeIPUsingDCP.pcap")
    rows = ops.filter(pl.col("app") == APP_PROFINET).select("frame", "cls", "name").rows()
    assert rows == [(1, 2, "DCP Identify"), (2, 2, "DCP Identify response"), (3, 3, "DCP Set IP"),
                    (4, 3, "DCP Set response")]


ALL_FIELDS = sorted(
    {f for specs in (MMS_SPECS, MMS_NAME_SPECS, GOOSE_SPECS, PN_SPECS, PN_OP_SPECS) for f in specs}
    | {"frame.protocols", "tcp.len", "goose.gocbRef", "goose.stNum"})

