"""ICS PDUs spanning TCP segments (core/decode/reassembly.py), against tshark.

No real capture at hand has an ICS PDU cut across segments, so real captures are rewritten with
every ICS segment cut in two (tests/segsplit.py: after 1 byte, inside the header, in the middle,
before the last byte; some first pieces sent again after the second, as retransmissions), and
the tshark differential tests run on the rewritten files: tshark reassembles (tcp_dissect_pdus)
and reports each PDU on the completing segment, and so must we, field for field. The number of
operations must also be the one of the original capture: none lost, none doubled.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from plantwatch.core.decode.reassembly import Reassembler
from plantwatch.core.decode.schema import APP_DNP3, APP_IEC104, APP_MMS, APP_MODBUS, APP_S7
from plantwatch.core.decode.view import PacketView
from tests import test_tshark_61850 as T61850
from tests import test_tshark_ics as T
from tests.oracle import needs_tshark
from tests.segsplit import split_capture

REAL = T.REAL
CASES = {
    "modbus": ("modbus_mixed_mb2.pcap", {502}, T.MODBUS_SPECS, APP_MODBUS, None),
    "s7": ("s7comm_snap7.pcap", {102}, T.S7_SPECS, APP_S7, T.s7_exclusions),
    "dnp3": ("dnp3_test_data_part1.pcap", {20000}, T.DNP3_SPECS, APP_DNP3, T.dnp3_exclusions),
    "iec104": ("iec104_misc.pcap", {2404}, T.IEC104_SPECS, APP_IEC104, None),
    "mms": ("IEC61850_Sample_File_MMS_and_GOOSE.pcap", {102}, T61850.MMS_SPECS, APP_MMS,
            T61850.mms_exclusions),
    "mms-stop": ("IEC61850_MMS_Specific_Commands_mms-stopRequest.pcap", {102}, T61850.MMS_SPECS,
                 APP_MMS, T61850.mms_exclusions),
}


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("split")


@pytest.mark.parametrize("case", [pytest.param(c, marks=needs_tshark) for c in sorted(CASES)])
def test_split_capture_decodes_as_tshark(case: str, split_dir: Path) -> None:
    name, ports, specs, app, excl_fn = CASES[case]
    src = REAL / name
    dst = split_dir / f"split_{name}"
    n_cut = split_capture(src, dst, ports, retransmit_every=5, min_first=8 if app == APP_MODBUS else 1)
    assert n_cut > 5
    cmp = T61850.compare if app == APP_MMS else T.compare
    excl = excl_fn(dst) if excl_fn else {}
    counts, bad = cmp(dst, specs, app, excl)
    T.check(counts, bad, ())
    assert max(counts.values()) > 0
    # tshark did reassemble PDUs here (the test would be hollow otherwise)
    assert sum(bool(v["tcp.segments"]) for v in T.tshark_fields(dst, ["tcp.segments"]).values()) > 5
    # reassembly loses and doubles nothing: as many ops as in the original capture
    decode = T61850.decode_file if app == APP_MMS else T.decode_file
    _, before = decode(src)
    _, after = decode(dst)
    assert after.filter(pl.col("app") == app).height == before.filter(pl.col("app") == app).height



# --------------------------------------------------------------------------------------------
# Unit tests of the reassembler's bookkeeping (no tshark).
def _view(pieces: list[tuple[int, bytes]], dport: int = 502) -> PacketView:
    v = PacketView.from_payloads([p for _, p in pieces], dport=dport)
    seq = np.array([s for s, _ in pieces], dtype=np.int64)
    return dataclasses.replace(v, seq=seq)


def _seen(view: PacketView) -> list[bytes]:
    return [view.payload(i) for i in range(view.pay.size)]


MB = bytes.fromhex("0001 0000 0006 01 03 0000 000a")  # one Modbus request (12 bytes)


def test_cut_pdu_is_reported_on_the_completing_segment() -> None:
    r = Reassembler()
    v = r.apply(_view([(100, MB + MB[:5]), (117, MB[5:] + MB)]))  # a whole PDU before the cut
    assert _seen(v) == [MB, MB + MB]


def test_retransmission_and_gap() -> None:
    r = Reassembler()
    # the first piece again (a retransmission) changes nothing; then the rest completes the PDU
    v = r.apply(_view([(100, MB[:9]), (100, MB[:9]), (109, MB[9:])]))
    assert _seen(v) == [b"", MB[:9], MB]
    # bytes lost between the pieces: the held part is dropped, the later segment is decoded alone
    v = r.apply(_view([(200, MB[:9]), (300, MB)]))
    assert _seen(v) == [b"", MB]
    # fewer than 8 bytes: tshark's Modbus/TCP heuristic does not claim the segment, nor do we
    v = r.apply(_view([(400, MB[:4]), (404, MB[4:])]))
    assert _seen(v) == [MB[:4], MB[4:]]


def test_memory_is_bounded() -> None:
    r = Reassembler(max_flows=3)
    for i in range(10):
        v = _view([(100, MB[:9])])
        r.apply(dataclasses.replace(v, sport=np.array([40000 + i])))
    assert len(r._held) == 3


def test_whole_pdus_leave_the_view_untouched() -> None:
    v = _view([(100, MB), (112, MB + MB)])
    assert Reassembler().apply(v) is v


def test_a_marked_retransmission_neither_completes_nor_starts_a_pdu() -> None:
    r = Reassembler()
    view = _view([(100, MB[:9]), (109, MB[9:]), (100, MB[:9])])
    v = r.apply(view, np.array([False, False, True]))
    assert _seen(v) == [b"", MB, MB[:9]] and not r._held
