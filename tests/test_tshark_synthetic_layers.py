"""The layer decoders against tshark on crafted captures: VLAN and QinQ tags, IPv6 with extension
headers, ICMP errors quoting a flow, ARP, IPv4 fragments, and every supported link type."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from plantwatch.core.capture.batch import (
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)
from plantwatch.core.synth import frames
from plantwatch.core.synth.pcapwriter import write_pcap
from tests.oracle import needs_tshark
from tests.test_tshark_layers import compare_file, decode_file

pytestmark = needs_tshark

MAC_A = "00:1b:1b:01:02:03"
MAC_B = "00:80:f4:0a:0b:0c"


def _ipv6_with_hop_by_hop(src: str, dst: str, udp: bytes) -> bytes:
    """An IPv6 packet whose UDP datagram sits behind a hop-by-hop options header."""
    hbh = bytes([17, 0]) + b"\x01\x04\x00\x00\x00\x00"  # next header UDP, 8 bytes, PadN
    return frames.ipv6(src, dst, 0, hbh + udp)


def _ipv4_fragments(src: str, dst: str, proto: int, payload: bytes, size: int, ident: int) -> list[bytes]:
    """`payload` (a whole transport segment) cut into IPv4 fragments of `size` bytes (multiple of 8)."""
    out = []
    for off in range(0, len(payload), size):
        part = payload[off:off + size]
        more = off + size < len(payload)
        hdr = bytearray(frames.ipv4(src, dst, proto, part, ident=ident, df=False)[:20])
        struct.pack_into("!H", hdr, 6, (0x2000 if more else 0) | (off // 8))
        struct.pack_into("!H", hdr, 10, 0)
        struct.pack_into("!H", hdr, 10, frames.inet_checksum(bytes(hdr)))
        out.append(bytes(hdr) + part)
    return out


def _records() -> list[bytes]:
    syn = frames.tcp("10.10.10.5", "10.20.20.10", 50000, 502, seq=1000, flags=frames.TCP_SYN)
    ip_syn = frames.ipv4("10.10.10.5", "10.20.20.10", 6, syn)
    probe = frames.ipv4("10.10.10.5", "10.10.10.1", 17,
                        frames.udp("10.10.10.5", "10.10.10.1", 5353, 53, b"\x12\x34" + bytes(10)))
    v6seg = frames.tcp("fd00::5", "fd00::10", 40000, 102, b"\x03\x00\x00\x07\x02\xf0\x80",
                       seq=7, ack=9, flags=frames.TCP_PSH | frames.TCP_ACK)
    return [
        frames.ether(MAC_B, MAC_A, 0x0800, ip_syn),
        frames.ether(MAC_B, MAC_A, 0x0800, ip_syn, vlan=20),
        frames.ether(MAC_B, MAC_A, 0x0800, ip_syn, vlan=100, vlan_inner=20),
        frames.ether(MAC_B, MAC_A, 0x86DD, frames.ipv6("fd00::5", "fd00::10", 6, v6seg)),
        frames.icmp_frame(MAC_B, MAC_A, "10.10.10.1", "10.10.10.5", frames.icmp_unreachable(3, probe)),
        frames.arp_frame(1, MAC_A, "10.10.10.5", "10.10.10.1"),
    ]


@pytest.fixture(scope="module")
def ethernet_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("layers") / "eth.pcap"
    write_pcap(path, [(1_700_000_000_000_000_000 + i * 1000, f) for i, f in enumerate(_records())])
    return path


def test_ethernet_vlan_qinq_ipv6_icmp_arp(ethernet_capture: Path) -> None:
    ours = decode_file(ethernet_capture)
    assert ours["vlan"].to_list()[:3] == [None, 20, 100]
    assert ours["vlan_inner"].to_list()[:3] == [None, None, 20]
    icmp = ours.row(4, named=True)
    assert (icmp["q_proto"], icmp["q_sport"], icmp["q_dport"]) == (17, 5353, 53)
    assert not compare_file(ethernet_capture)


@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_NULL, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2])
def test_other_link_types(tmp_path: Path, linktype: int) -> None:
    ip = frames.ipv4("192.168.1.2", "8.8.8.8", 6,
                     frames.tcp("192.168.1.2", "8.8.8.8", 40000, 443, seq=1, flags=frames.TCP_SYN))
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
        rec = ip
    elif linktype == LINKTYPE_NULL:
        rec = struct.pack("<I", 2) + ip
    elif linktype == LINKTYPE_LINUX_SLL:
        rec = struct.pack("!HHH", 0, 1, 6) + bytes.fromhex("001b1b010203") + b"\x00\x00" + struct.pack("!H", 0x0800) + ip
    else:
        rec = struct.pack("!HHIHBB", 0x0800, 0, 2, 1, 0, 6) + bytes.fromhex("001b1b010203") + b"\x00\x00" + ip
    path = tmp_path / "lt.pcap"
    write_pcap(path, [(1_700_000_000_000_000_000, rec)], linktype=linktype)
    ours = decode_file(path).row(0, named=True)
    assert (ours["sport"], ours["dport"], ours["tcp_flags"]) == (40000, 443, 0x002)
    if linktype in (LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2):
        assert ours["eth_src"] == 0x001B1B010203
    assert not compare_file(path)


def test_ipv6_extension_header_and_fragments(tmp_path: Path) -> None:
    udp = frames.udp("fe80::1", "ff02::1", 5000, 47808, b"\x81\x0b\x00\x04")
    v6 = _ipv6_with_hop_by_hop("fe80::1", "ff02::1", udp)
    big = frames.udp("10.10.10.5", "10.10.10.9", 4000, 4001, b"x" * 3000)
    recs = [frames.ether(MAC_B, MAC_A, 0x86DD, v6)]
    recs += [frames.ether(MAC_B, MAC_A, 0x0800, f) for f in _ipv4_fragments("10.10.10.5", "10.10.10.9", 17, big, 1480, 77)]
    path = tmp_path / "v6.pcap"
    write_pcap(path, [(1_700_000_000_000_000_000 + i, r) for i, r in enumerate(recs)])
    ours = decode_file(path)
    assert ours.row(0, named=True)["dport"] == 47808
    assert ours["ip_frag"].to_list()[1:] == [True, True, True]
    assert ours["sport"].to_list()[1:] == [4000, None, None]
    assert not compare_file(path)
