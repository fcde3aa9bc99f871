"""plantwatch.core.capture.files: pcap/pcapng/gzip reading, merging, batching and errors; tshark as the oracle."""

from __future__ import annotations

import gzip
import logging
import os
import random
import shutil
import struct
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import plantwatch.core.capture.files as sources
from plantwatch.core.capture.batch import CaptureError
from plantwatch.core.capture.files import iter_files, read_batches, total_input_bytes
from plantwatch.core.synth.pcapwriter import PcapngWriter, PcapWriter, write_pcap, write_pcapng

REAL = sorted((Path(__file__).parent / "data" / "real").glob("*.pcap*"))
T0 = 1_700_000_000_123_456_789
HAVE_TSHARK = shutil.which("tshark") is not None
tshark = [pytest.mark.tshark, pytest.mark.skipif(not HAVE_TSHARK, reason="tshark not installed")]


def _frames(n: int, seed: int = 1) -> list[bytes]:
    rnd = random.Random(seed)
    return [rnd.randbytes(rnd.randrange(14, 300)) for _ in range(n)]


def read_all(paths, **kw) -> list[tuple]:
    """(file_id, frame, ts, caplen, wirelen, linktype, bytes) for every record read."""
    out = []
    for b in read_batches([str(p) for p in paths], **kw):
        assert b.data.dtype == np.uint8 and b.offset.dtype == np.int64
        assert b.ts.dtype == np.int64 and b.frame.dtype == np.int64
        assert b.caplen.dtype == np.int32 and b.wirelen.dtype == np.int32
        assert b.linktype.dtype == np.int32 and b.file_id.dtype == np.int32
        assert b.paths == tuple(str(p) for p in iter_files(paths))
        for i in range(len(b)):
            o, c = int(b.offset[i]), int(b.caplen[i])
            assert o >= 0 and o + c <= b.data.shape[0]
            out.append((int(b.file_id[i]), int(b.frame[i]), int(b.ts[i]), c, int(b.wirelen[i]),
                        int(b.linktype[i]), b.data[o:o + c].tobytes()))
    return out


def tshark_frames(path) -> list[tuple]:
    """(frame.number, time in ns or None, frame.len, frame.cap_len) per packet, from tshark.

    Frames without an encapsulation (pcapng custom blocks, systemd journal entries) are not
    packets: they are left out, but the packets after them keep tshark's numbering."""
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-t", "e", "-T", "fields",
                          "-e", "frame.number", "-e", "frame.time_epoch", "-e", "frame.len",
                          "-e", "frame.cap_len", "-e", "frame.encap_type"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        num, t, ln, cap, encap = line.split("\t")
        if not encap:
            continue
        if t:
            sec, _, frac = t.partition(".")
            ns = int(sec) * 10**9 + int((frac + "000000000")[:9])
        else:
            ns = None  # no timestamp (pcapng Simple Packet Block)
        rows.append((int(num), ns, int(ln), int(cap)))
    return rows


def assert_matches_tshark(path) -> None:
    want = tshark_frames(path)
    got = read_all([path])
    assert len(got) == len(want) > 0
    for (fid, frame, ts, cap, wire, _lt, _b), (num, t, ln, tcap) in zip(got, want, strict=True):
        assert (fid, frame, wire, cap) == (0, num, ln, tcap)
        if t is not None:
            assert ts == t, f"frame {num}"


@pytest.fixture(params=[64 << 10, 4 << 20], ids=["small-blocks", "default-blocks"])
def block_size(request, monkeypatch):
    """Run with tiny read blocks too, so records straddle block boundaries everywhere."""
    monkeypatch.setattr(sources, "BLOCK_SIZE", request.param)
    return request.param


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("nano", [False, True])
@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("gz", [False, True])
def test_pcap_round_trip(tmp_path, block_size, nano, big, gz):
    frames = _frames(600)
    p = tmp_path / ("a.pcap.gz" if gz else "a.pcap")
    recs = [(T0 + i * 999_999_937, f) for i, f in enumerate(frames)]
    with PcapWriter(p, linktype=101, nanosecond=nano, big_endian=big) as w:
        for i, (t, f) in enumerate(recs):
            w.write(t, f, wirelen=len(f) + (i % 3) * 100)
    got = read_all([p])
    assert len(got) == len(recs)
    for i, (g, (t, f)) in enumerate(zip(got, recs, strict=True)):
        want_ts = t if nano else t // 1000 * 1000
        assert g == (0, i + 1, want_ts, len(f), len(f) + (i % 3) * 100, 101, f)


def _ns_2pow(ticks: int, k: int) -> int:
    return (ticks >> k) * 10**9 + (((ticks & ((1 << k) - 1)) * 10**9) >> k)


def _mixed_pcapng(path: Path) -> list[tuple]:
    """Two sections (little- then big-endian), interfaces of different link types and
    resolutions, if_tsoffset, SPB, obsolete Packet Block and blocks to skip; returns the
    expected (file_id, frame, ts, caplen, wirelen, linktype, bytes)."""
    frames = _frames(400, seed=2)
    exp = []
    a, b = path.with_suffix(".s1"), path.with_suffix(".s2")
    with PcapngWriter(a, interfaces=[(1, 9), (113, -20)]) as w:
        w.write_raw_block(4, struct.pack("<HH4s", 1, 4, b"\x0a\0\0\x01") + b"h\0\0\0" + bytes(4))
        t_last = 0
        for i in range(300):
            t, f = T0 + i * 12_345_678, frames[i]
            if i % 50 == 7:
                w.write_simple(f)
                exp.append((t_last, len(f), len(f), 1, f))
                continue
            iface = i % 2
            w.write(t, f, iface=iface)
            if iface == 1:  # what the 2^-20 ticks written (rounded up) read back as
                sec, frac = divmod(t, 10**9)
                ticks = (sec << 20) + -((-frac << 20) // 10**9)
                t = _ns_2pow(ticks, 20)
            exp.append((t, len(f), len(f), 113 if iface else 1, f))
            t_last = t
            if i == 100:
                w.write_raw_block(5, struct.pack("<III", 0, 0, 0))        # ISB
                w.write_raw_block(0x00000BAD, b"\0\0\0\0custom data")   # custom block
                exp.append(None)  # Wireshark gives a frame number to a custom block
        # obsolete Packet Block: iface 0 (nanosecond ticks), drops 0
        tk = T0 + 10**10
        f = frames[300]
        w.write_raw_block(2, struct.pack("<HHIIII", 0, 0, tk >> 32, tk & 0xFFFFFFFF, len(f), len(f) + 4) + f)
        exp.append((tk, len(f), len(f) + 4, 1, f))
    with PcapngWriter(b, interfaces=[], big_endian=True) as w:
        w.add_interface(101, 6, tsoffset=-3600)
        w.add_interface(1, 3)
        for i in range(300, 400):
            t, f = T0 + 10**11 + i * 7_777_777, frames[i]
            iface = i % 2
            w.write(t, f, iface=iface)
            t = t // 1000 * 1000 if iface == 0 else t // 10**6 * 10**6
            exp.append((t, len(f), len(f), 101 if iface == 0 else 1, f))
    path.write_bytes(a.read_bytes() + b.read_bytes())
    a.unlink()
    b.unlink()
    return [(0, i + 1, *e) for i, e in enumerate(exp) if e is not None]


@pytest.mark.parametrize("gz", [False, True])
def test_pcapng_round_trip(tmp_path, block_size, gz):
    p = tmp_path / "mixed.pcapng"
    exp = _mixed_pcapng(p)
    if gz:
        gp = tmp_path / "mixed.bin"  # gzip detected by magic, not by name
        gp.write_bytes(gzip.compress(p.read_bytes(), mtime=0))
        p = gp
    assert read_all([p]) == exp


def test_pcapng_spb_takes_last_timestamp(tmp_path):
    p = tmp_path / "spb.pcapng"
    with PcapngWriter(p, interfaces=[(1, None)]) as w:
        w.write_simple(b"first")     # nothing seen yet: 0
        w.write(T0, b"x" * 20)
        w.write_simple(b"second")
    got = read_all([p])
    assert [(g[2], g[6]) for g in got] == [(0, b"first"), (T0 // 1000 * 1000, b"x" * 20),
                                          (T0 // 1000 * 1000, b"second")]


# ----------------------------------------------------------------------------- tshark oracle

@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
@pytest.mark.tshark
@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark not installed")
def test_real_captures_match_tshark(path):
    assert_matches_tshark(path)


@pytest.mark.parametrize("variant", ["pcap-us", "pcap-ns-be", "pcap.gz", "mixed-pcapng",
                                     "mixed-pcapng.gz"])
@pytest.mark.tshark
@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark not installed")
def test_generated_captures_match_tshark(tmp_path, variant):
    recs = [(T0 + i * 1_234_567_891, f) for i, f in enumerate(_frames(300, seed=3))]
    if variant.startswith("mixed"):
        p = tmp_path / "m.pcapng"
        _mixed_pcapng(p)
        if variant.endswith(".gz"):
            q = tmp_path / "m.pcapng.gz"
            q.write_bytes(gzip.compress(p.read_bytes()))
            p = q
    else:
        p = tmp_path / ("a.pcap.gz" if variant.endswith("gz") else "a.pcap")
        write_pcap(p, recs, nanosecond=variant == "pcap-ns-be", big_endian=variant == "pcap-ns-be")
    assert_matches_tshark(p)


# ----------------------------------------------------------------------------- merge, batches

def test_merge_two_files_in_time_order(tmp_path, block_size):
    fa, fb = _frames(500, seed=4), _frames(500, seed=5)
    ta = sorted(random.Random(6).sample(range(10**6), 500))
    tb = sorted(random.Random(7).sample(range(10**6), 500))
    write_pcap(tmp_path / "b.pcap", [(T0 + t * 1000, f) for t, f in zip(ta, fa, strict=True)])
    write_pcap(tmp_path / "a.pcap", [(T0 + t * 1000, f) for t, f in zip(tb, fb, strict=True)])
    # paths in the given order (b first, so file 0 is b.pcap)
    got = read_all([tmp_path / "b.pcap", tmp_path / "a.pcap"], chunk_packets=64)
    assert len(got) == 1000
    ts = [g[2] for g in got]
    assert ts == sorted(ts)
    for fid, fr in ((0, fa), (1, fb)):
        mine = [g for g in got if g[0] == fid]
        assert [g[1] for g in mine] == list(range(1, 501))
        assert [g[6] for g in mine] == fr
    # equal timestamps: the file given first comes first
    write_pcap(tmp_path / "c.pcap", [(T0, b"c1"), (T0, b"c2")])
    write_pcap(tmp_path / "d.pcap", [(T0, b"d1"), (T0, b"d2")])
    got = read_all([tmp_path / "d.pcap", tmp_path / "c.pcap"])
    assert [g[6] for g in got] == [b"d1", b"d2", b"c1", b"c2"]


def test_merge_ties_across_blocks(tmp_path, block_size):
    """Equal timestamps in files longer than a block: all of file 0 comes before file 1."""
    for name in ("a.pcap", "b.pcap"):
        write_pcap(tmp_path / name, [(T0, name.encode() + f) for f in _frames(3000)])
    got = read_all([tmp_path / "a.pcap", tmp_path / "b.pcap"], chunk_packets=500)
    assert [(g[0], g[1]) for g in got] == [(f, i) for f in (0, 1) for i in range(1, 3001)]


def test_merge_keeps_file_order_when_time_goes_backwards(tmp_path):
    write_pcap(tmp_path / "a.pcap", [(T0 + t * 1000, b"a%d" % t) for t in (10, 30, 20, 40)])
    write_pcap(tmp_path / "b.pcap", [(T0 + t * 1000, b"b%d" % t) for t in (15, 25, 35)])
    got = read_all([tmp_path / "a.pcap", tmp_path / "b.pcap"], chunk_packets=2)
    assert [g[6] for g in got] == [b"a10", b"b15", b"b25", b"a30", b"a20", b"b35", b"a40"]
    assert [g[1] for g in got if g[0] == 0] == [1, 2, 3, 4]


def test_merge_of_three_files_with_different_formats(tmp_path, block_size):
    rnd = random.Random(8)
    recs = {}
    for name in ("x.pcap", "y.pcapng", "z.pcap.gz"):
        ts = sorted(rnd.sample(range(10**7), 2000))
        recs[name] = [(T0 // 1000 * 1000 + t * 1000, rnd.randbytes(rnd.randrange(40, 90))) for t in ts]
        (write_pcapng if "pcapng" in name else write_pcap)(tmp_path / name, recs[name])
    got = read_all([tmp_path / n for n in recs], chunk_packets=1000)
    want = sorted(((t, i, k, f) for i, n in enumerate(recs) for k, (t, f) in enumerate(recs[n])))
    assert [(g[2], g[0], g[1] - 1, g[6]) for g in got] == want


def test_chunk_boundaries(tmp_path):
    p = tmp_path / "a.pcap"
    write_pcap(p, [(T0 + i, f) for i, f in enumerate(_frames(100, seed=9))])
    sizes = [len(b) for b in read_batches([p], chunk_packets=7)]
    assert sizes == [7] * 14 + [2]
    assert read_all([p], chunk_packets=7) == read_all([p])


def test_directory_expansion(tmp_path):
    d = tmp_path / "caps"
    d.mkdir()
    write_pcap(d / "b_second.txt", [(T0 + 2000, b"second")])      # a capture despite its name
    write_pcapng(d / "a_first.bin", [(T0, b"first")])
    (d / "c_notes.pcap").write_text("not a capture\n")
    (d / "d.gz").write_bytes(gzip.compress(b"hello"))
    (d / "sub").mkdir()
    assert [p.name for p in iter_files([d])] == ["a_first.bin", "b_second.txt"]
    assert [g[6] for g in read_all([d])] == [b"first", b"second"]


def test_progress_counts_file_bytes(tmp_path, block_size):
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcapng.gz"
    write_pcap(a, [(T0 + i, f) for i, f in enumerate(_frames(2000))])
    write_pcapng(b, [(T0 + i, f) for i, f in enumerate(_frames(2000, seed=3))])
    seen: list[int] = []
    n = sum(len(x) for x in read_batches([a, b], on_progress=seen.append))
    assert n == 4000
    assert seen == sorted(seen) and seen[-1] == total_input_bytes([a, b])
    assert total_input_bytes([a, b]) == a.stat().st_size + b.stat().st_size


@pytest.mark.parametrize("name", ["a.pcapng", "a.pcapng.gz"])
def test_reads_from_a_pipe(tmp_path, block_size, name):
    """The parsers only call read(): a FIFO (not seekable) works."""
    src = tmp_path / name
    recs = [(T0 + i * 1000, f) for i, f in enumerate(_frames(3000))]
    write_pcapng(src, recs)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as w:
            data = src.read_bytes()
            for i in range(0, len(data), 10_000):
                w.write(data[i:i + 10_000])

    th = threading.Thread(target=feed)
    th.start()
    try:
        got = read_all([fifo])
    finally:
        th.join()
    assert [(g[2], g[6]) for g in got] == [(t // 1000 * 1000, f) for t, f in recs]


# ----------------------------------------------------------------------------- bad inputs

def _problem(paths) -> str:
    with pytest.raises(CaptureError) as ei:
        list(read_batches([str(p) for p in paths]))
    assert "\n" not in str(ei.value)
    return ei.value.problem


def test_missing_file(tmp_path):
    assert _problem([tmp_path / "nope.pcap"]) == "no such file"


def test_empty_file(tmp_path):
    (tmp_path / "e.pcap").write_bytes(b"")
    assert _problem([tmp_path / "e.pcap"]) == "empty file"


def test_text_file(tmp_path):
    (tmp_path / "t.pcap").write_text("hello, this is text\n" * 10)
    assert _problem([tmp_path / "t.pcap"]) == "not a pcap or pcapng file"


def test_directory_without_captures(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    assert _problem([tmp_path]) == "no capture files in directory"
    with pytest.raises(CaptureError):
        iter_files([tmp_path])


def test_unknown_link_type_pcap(tmp_path):
    write_pcap(tmp_path / "a.pcap", [(T0, b"abc")], linktype=147)
    assert _problem([tmp_path / "a.pcap"]) == "unknown link type 147"


def test_unknown_link_type_pcapng_interface(tmp_path):
    p = tmp_path / "a.pcapng"
    write_pcapng(p, [(T0, b"abc", 0), (T0, b"def", 1)], interfaces=[(1, None), (147, None)])
    assert _problem([p]) == "unknown link type 147"
    write_pcapng(p, [(T0, b"abc", 0)], interfaces=[(1, None), (147, None)])
    assert len(read_all([p])) == 1  # an unused interface is fine


def test_corrupt_pcap_record_length(tmp_path, block_size):
    p = tmp_path / "a.pcap"
    write_pcap(p, [(T0 + i, f) for i, f in enumerate(_frames(10))])
    raw = bytearray(p.read_bytes())
    third = 24 + sum(16 + len(f) for f in _frames(10)[:2])
    struct.pack_into("<I", raw, third + 8, 0x7FFFFFF0)
    p.write_bytes(bytes(raw))
    assert _problem([p]) == f"corrupt record at byte {third}: captured length {0x7FFFFFF0}"
    struct.pack_into("<I", raw, third + 8, 300_000)  # fits in the file, still absurd
    p.write_bytes(bytes(raw) + bytes(400_000))
    assert _problem([p]).startswith(f"corrupt record at byte {third}")


@pytest.mark.parametrize("how", ["not-multiple-of-4", "trailer-mismatch", "too-short", "huge"])
def test_corrupt_pcapng_block(tmp_path, how):
    p = tmp_path / "a.pcapng"
    write_pcapng(p, [(T0 + i, b"z" * 40) for i in range(5)])
    raw = bytearray(p.read_bytes())
    # SHB and IDB come first; the 3rd EPB starts after them and two 72-byte EPBs
    shb = struct.unpack_from("<I", raw, 4)[0]
    idb = struct.unpack_from("<I", raw, shb + 4)[0]
    at = shb + idb + 2 * 72
    if how == "not-multiple-of-4":
        struct.pack_into("<I", raw, at + 4, 70)
    elif how == "trailer-mismatch":
        struct.pack_into("<I", raw, at + 68, 76)
    elif how == "too-short":
        struct.pack_into("<I", raw, at + 4, 8)
    else:
        struct.pack_into("<I", raw, at + 4, 0xFFFFFFF0)
    p.write_bytes(bytes(raw))
    assert _problem([p]).startswith(f"corrupt block at byte {at}")


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_truncated_last_record(tmp_path, block_size, fmt):
    p = tmp_path / f"a.{fmt}"
    frames = _frames(50)
    (write_pcap if fmt == "pcap" else write_pcapng)(p, [(T0 + i, f) for i, f in enumerate(frames)])
    raw = p.read_bytes()
    p.write_bytes(raw[:-7])
    warnings: list[str] = []
    got = read_all([p], on_warning=warnings.append)
    assert [g[6] for g in got] == frames[:49]
    last = len(raw) - (16 + len(frames[-1]) if fmt == "pcap" else 32 + len(frames[-1]) + (-len(frames[-1])) % 4)
    assert warnings == [f"{p}: truncated record at byte {last}; kept the 49 packets before it"]


def test_truncated_warning_goes_to_logging_without_callback(tmp_path, caplog):
    p = tmp_path / "a.pcap"
    write_pcap(p, [(T0, b"a" * 30), (T0, b"b" * 30)])
    p.write_bytes(p.read_bytes()[:-3])
    with caplog.at_level(logging.WARNING, logger="plantwatch.core.capture.files"):
        assert len(read_all([p])) == 1
    assert "truncated record at byte 70; kept the 1 packets before it" in caplog.text


def test_truncated_gzip(tmp_path, block_size):
    p = tmp_path / "a.pcap.gz"
    frames = _frames(3000)
    write_pcap(p, [(T0 + i, f) for i, f in enumerate(frames)])
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    warnings: list[str] = []
    got = read_all([p], on_warning=warnings.append)
    assert 100 < len(got) < 3000
    assert [g[6] for g in got] == frames[: len(got)]
    assert len(warnings) == 1 and f"kept the {len(got)} packets before it" in warnings[0]
    assert warnings[0].startswith(f"{p}: truncated")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unreadable_file(tmp_path):
    p = tmp_path / "a.pcap"
    write_pcap(p, [(T0, b"abc")])
    p.chmod(0)
    try:
        assert _problem([p]) == "permission denied"
    finally:
        p.chmod(0o644)
