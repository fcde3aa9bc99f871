"""plantwatch.core.synth.pcapwriter: byte layout, determinism, and tshark reading what it writes."""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess

import pytest

from plantwatch.core.synth.pcapwriter import PcapngWriter, PcapWriter, write_pcap, write_pcapng

T0 = 1_700_000_000_123_456_789
FRAMES = [bytes((i * 7 + k) & 0xFF for k in range(54 + i % 40)) for i in range(50)]


def test_pcap_header_and_record_layout(tmp_path):
    p = tmp_path / "a.pcap"
    with PcapWriter(p, linktype=101, nanosecond=True, big_endian=True, snaplen=1500) as w:
        w.write(T0, b"\x45" * 20, wirelen=60)
    raw = p.read_bytes()
    assert raw[:4] == bytes.fromhex("a1b23c4d")
    assert struct.unpack(">HHiIII", raw[4:24]) == (2, 4, 0, 0, 1500, 101)
    assert struct.unpack(">IIII", raw[24:40]) == (1_700_000_000, 123_456_789, 20, 60)
    assert raw[40:] == b"\x45" * 20


def test_pcap_microsecond_little_endian(tmp_path):
    p = tmp_path / "a.pcap"
    assert write_pcap(p, [(T0, b"xyz")]) == 1
    raw = p.read_bytes()
    assert raw[:4] == bytes.fromhex("d4c3b2a1")
    assert struct.unpack("<IIII", raw[24:40]) == (1_700_000_000, 123_456, 3, 3)


def test_pcapng_blocks(tmp_path):
    p = tmp_path / "a.pcapng"
    with PcapngWriter(p, interfaces=[(1, 9), (113, -20)]) as w:
        w.write(T0, b"abcde", iface=1)
    raw = p.read_bytes()
    btype, blen, bom = struct.unpack_from("<III", raw, 0)
    assert (btype, bom) == (0x0A0D0D0A, 0x1A2B3C4D)
    assert struct.unpack_from("<I", raw, blen - 4)[0] == blen
    off = blen
    seen = []
    while off < len(raw):
        t, n = struct.unpack_from("<II", raw, off)
        assert n % 4 == 0 and struct.unpack_from("<I", raw, off + n - 4)[0] == n
        seen.append((t, raw[off + 8: off + n - 4]))
        off += n
    assert [t for t, _ in seen] == [1, 1, 6]
    assert struct.unpack_from("<HHI", seen[0][1]) == (1, 0, 262144)
    assert seen[0][1][8:13] == b"\x09\x00\x01\x00\x09"      # if_tsresol = 10^-9
    assert seen[1][1][8:13] == b"\x09\x00\x01\x00\x94"      # if_tsresol = 2^-20
    iface, hi, lo, cap, orig = struct.unpack_from("<IIIII", seen[2][1])
    ticks = (hi << 32) | lo
    assert (iface, cap, orig) == (1, 5, 5)
    sec, frac = divmod(T0, 10**9)
    assert ticks >> 20 == sec
    # rounded up, so truncating back to ns gives T0 or at most one tick (< 954 ns) more
    assert 0 <= ((ticks & 0xFFFFF) * 10**9 >> 20) - frac < 954
    assert seen[2][1][20:25] == b"abcde"


@pytest.mark.parametrize("name", ["a.pcap.gz", "a.pcapng.gz"])
def test_gzip_is_deterministic(tmp_path, name):
    recs = [(T0 + i * 1000, f) for i, f in enumerate(FRAMES)]
    fn = write_pcap if ".pcap." in name else write_pcapng
    a, b = tmp_path / "x", tmp_path / "y"
    a.mkdir()
    b.mkdir()
    fn(a / name, recs)
    fn(b / name, recs)
    ra, rb = (a / name).read_bytes(), (b / name).read_bytes()
    assert ra[:2] == b"\x1f\x8b" and ra == rb
    assert ra[4:8] == b"\0\0\0\0"  # mtime 0
    plain = tmp_path / ("plain.pcap" if ".pcap." in name else "plain.pcapng")
    fn(plain, recs)
    assert gzip.decompress(ra) == plain.read_bytes()


@pytest.mark.parametrize("variant", ["pcap-us", "pcap-ns-be", "pcapng", "pcapng-be.gz"])
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.tshark
def test_tshark_reads_what_we_write(tmp_path, variant):
    recs = [(T0 + i * 1_000_003, f) for i, f in enumerate(FRAMES)]
    if variant == "pcap-us":
        p = tmp_path / "a.pcap"
        write_pcap(p, recs)
        want = [(t // 1000 * 1000, len(f)) for t, f in recs]
    elif variant == "pcap-ns-be":
        p = tmp_path / "a.pcap"
        write_pcap(p, recs, nanosecond=True, big_endian=True)
        want = [(t, len(f)) for t, f in recs]
    else:
        p = tmp_path / ("a.pcapng.gz" if variant.endswith("gz") else "a.pcapng")
        write_pcapng(p, [(t, f, i % 2) for i, (t, f) in enumerate(recs)],
                     interfaces=[(1, 9), (1, 3)], big_endian=variant.startswith("pcapng-be"))
        want = [(t if i % 2 == 0 else t // 10**6 * 10**6, len(f)) for i, (t, f) in enumerate(recs)]
    out = subprocess.run(["tshark", "-n", "-r", str(p), "-t", "e", "-T", "fields",
                          "-e", "frame.time_epoch", "-e", "frame.len"],
                         capture_output=True, text=True, check=True).stdout
    got = [(int(t.replace(".", "")), int(n)) for t, n in (ln.split("\t") for ln in out.splitlines())]
    assert got == want
