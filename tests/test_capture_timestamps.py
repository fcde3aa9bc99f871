"""pcapng timestamp fields from hostile files (issue 17.5): a huge if_tsresol, an if_tsoffset
beyond what int64 nanoseconds hold, a timestamp high word >= 0x80000000 in an Enhanced or
obsolete Packet Block. The packets are kept with the time clamped to 1970..2262 and a warning
names the file; nothing raises anything but CaptureError. The fuzz target checks every
timestamp against an exact big-integer oracle, with a fixed seed and a bounded example count."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwatch.core.capture.batch import CaptureError
from plantwatch.core.capture.files import read_batches
from plantwatch.core.capture.pcapng import PcapngCursor, read_pcapng_from
from plantwatch.core.capture.records import TS_MAX
from plantwatch.core.synth import frames as f

FRAME = f.udp_frame("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2", 40000, 514, b"<13>hi")
NS = 10**9


def _opt(e: str, code: int, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * ((-len(value)) % 4)


def _block(e: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * ((-len(body)) % 4)
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def _shb(e: str) -> bytes:
    return _block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(e: str, options: bytes) -> bytes:
    return _block(e, 1, struct.pack(e + "HHI", 1, 0, 65535) + options)


def _epb(e: str, hi: int, lo: int, frame: bytes = FRAME) -> bytes:
    return _block(e, 6, struct.pack(e + "IIIII", 0, hi, lo, len(frame), len(frame)) + frame)


def _pb(e: str, hi: int, lo: int, frame: bytes = FRAME) -> bytes:
    return _block(e, 2, struct.pack(e + "HHIIII", 0, 0, hi, lo, len(frame), len(frame)) + frame)


def _spb(e: str, frame: bytes = FRAME) -> bytes:
    return _block(e, 3, struct.pack(e + "I", len(frame)) + frame)


def _oracle(hi: int, lo: int, tsresol: int, tsoffset: int) -> int:
    """The time in ns, with Python integers: exact, truncated, then clamped to [0, TS_MAX]."""
    t = (hi << 32) | lo
    ns = (t * NS) >> (tsresol & 0x7F) if tsresol & 0x80 else t * NS // 10 ** tsresol
    return min(max(ns + tsoffset * NS, 0), TS_MAX)


def _read(path: Path) -> tuple[list[int], list[str]]:
    warnings: list[str] = []
    ts: list[int] = []
    for b in read_batches([path], on_warning=warnings.append):
        ts += b.ts.tolist()
    return ts, warnings


CASES = {  # options, high word, low word, if_tsresol, if_tsoffset, clamped
    "tsresol 10^-28": (_opt("<", 9, bytes([0x1C])), 0xFFFFFFFF, 0xFFFFFFFF, 0x1C, 0, False),
    "tsresol 2^-127": (_opt("<", 9, bytes([0xFF])), 0x80000000, 0, 0xFF, 0, False),
    "tsresol 2^0": (_opt("<", 9, bytes([0x80])), 0xFFFFFFFF, 0, 0x80, 0, True),
    "tsresol 1 s": (_opt("<", 9, bytes([0])), 0, 0xFFFFFFFF, 0, 0, False),
    "tsoffset 2^62 s": (_opt("<", 14, struct.pack("<q", 1 << 62)), 0, 1, 6, 1 << 62, True),
    "tsoffset -2^62 s": (_opt("<", 14, struct.pack("<q", -(1 << 62))), 0, 1, 6, -(1 << 62), True),
    "high word 0x80000000": (b"", 0x80000000, 0, 6, 0, True),
    "high word 0xffffffff ns": (_opt("<", 9, bytes([9])), 0xFFFFFFFF, 0xFFFFFFFF, 9, 0, True),
}


@pytest.mark.parametrize("block", ["epb", "pb"])
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_time_fields_keep_the_packet_clamped(tmp_path: Path, case: str, block: str) -> None:
    options, hi, lo, tsresol, tsoffset, clamped = CASES[case]
    p = tmp_path / "t.pcapng"
    pkt = (_epb if block == "epb" else _pb)("<", hi, lo)
    p.write_bytes(_shb("<") + _idb("<", options + (_opt("<", 0, b"") if options else b"")) + pkt + _spb("<"))
    ts, warnings = _read(p)
    want = _oracle(hi, lo, tsresol, tsoffset)
    assert ts == [want, want]  # the SPB takes the last time seen
    assert warnings == ([f"{p}: 1 packets have timestamp fields (if_tsresol, if_tsoffset or the "
                         "time itself) outside 1970-01-01..2262-04-11; kept with the time "
                         "clamped to that range"] if clamped else [])


def test_ring_reader_warns_once_per_read(tmp_path: Path) -> None:
    buf = _shb("<") + _idb("<", b"") + _epb("<", 0x80000000, 0) + _epb("<", 0, 5)
    batch, cur = read_pcapng_from(buf, PcapngCursor(), "ring.pcapng")
    assert batch is not None and batch.ts.tolist() == [TS_MAX, 5000]
    assert cur.clamped == 1
    assert PcapngCursor.from_json(cur.to_json()).clamped == 1


def test_analyze_keeps_hostile_time_with_one_warning(tmp_path: Path) -> None:
    p = tmp_path / "hostile-time.pcapng"
    idb = _idb("<", _opt("<", 9, bytes([0x1C])) + _opt("<", 14, struct.pack("<q", 1 << 62))
               + _opt("<", 0, b""))
    p.write_bytes(_shb("<") + idb
                  + _epb("<", 0xFFFFFFFF, 0xFFFFFFFF) + _pb("<", 0x80000000, 0))
    r = subprocess.run([sys.executable, "-m", "plantwatch.tui.cli", "analyze", str(p),
                        "--store", str(tmp_path / "s.sqlite"), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "kept with the time clamped" in r.stderr


# ----------------------------------------------------------------------------- fuzz target

_u32 = st.integers(0, 0xFFFFFFFF)
_packet = st.one_of(
    st.tuples(st.just("epb"), _u32, _u32),
    st.tuples(st.just("pb"), _u32, _u32),
    st.tuples(st.just("spb"), st.just(0), st.just(0)),
)
# Any option before the ones that matter: unknown codes, odd lengths, lengths running past the block
_noise = st.lists(st.tuples(st.integers(1, 0xFFFF).filter(lambda c: c not in (9, 14)),
                            st.binary(max_size=12)), max_size=3)


@settings(derandomize=True, max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(order=st.sampled_from("<>"), tsresol=st.one_of(st.none(), st.integers(0, 255)),
       tsoffset=st.one_of(st.none(), st.integers(-(1 << 63), (1 << 63) - 1),
                          st.integers(-(10**10), 10**10)),
       noise=_noise, overrun=st.booleans(), packets=st.lists(_packet, min_size=1, max_size=6))
def test_fuzz_pcapng_time_and_option_fields(tmp_path_factory, order, tsresol, tsoffset, noise,
                                            overrun, packets) -> None:
    e = order
    opts = b"".join(_opt(e, c, v) for c, v in noise)
    if tsresol is not None:
        opts += _opt(e, 9, bytes([tsresol]))
    if tsoffset is not None:
        opts += _opt(e, 14, struct.pack(e + "q", tsoffset))
    if overrun:  # an option whose length runs past the end of the block
        opts += struct.pack(e + "HH", 14, 200)
    elif opts:
        opts += _opt(e, 0, b"")
    body = _shb(e) + _idb(e, opts)
    want: list[int] = []
    last = 0
    r = 6 if tsresol is None else tsresol
    off = tsoffset or 0
    for kind, hi, lo in packets:
        if kind == "spb":
            body += _spb(e)
            want.append(last)
            continue
        body += (_epb if kind == "epb" else _pb)(e, hi, lo)
        last = _oracle(hi, lo, r, off)
        want.append(last)
    p = tmp_path_factory.mktemp("fuzz") / "f.pcapng"
    p.write_bytes(body)
    try:
        ts, warnings = _read(p)
    except CaptureError as err:  # allowed, as one line naming the file
        assert str(err).startswith(f"{p}: ") and "\n" not in str(err)
        return
    assert ts == want
    for w in warnings:
        assert w.startswith(f"{p}: ") and "\n" not in w
