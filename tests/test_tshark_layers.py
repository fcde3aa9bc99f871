"""Differential test of the link, network and transport decoders against tshark.

Every field below is compared frame by frame on every real capture. A mismatch names the file,
frame and field; a disagreement is a bug in one of the two decoders.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.capture.files import read_batches
from plantwatch.core.decode import Decoder
from plantwatch.core.decode.addr import ip_to_text, mac_to_text
from tests.oracle import needs_tshark, tshark_fields

REAL = sorted((Path(__file__).parent / "data" / "real").glob("*.pcap*"))
pytestmark = needs_tshark

FIELDS = [
    "eth.src", "eth.dst", "vlan.id", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.proto",
    "ip.ttl", "ipv6.nxt", "ipv6.hlim", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
    "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.window_size_value", "tcp.len", "udp.length",
    "icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code", "arp.opcode", "arp.src.hw_mac",
    "arp.src.proto_ipv4", "arp.dst.proto_ipv4", "ip.flags.mf", "ip.frag_offset", "frame.protocols", "sll.src.eth", "ieee8021ad.id",
]


def decode_file(path: Path) -> pl.DataFrame:
    dec = Decoder()
    return pl.concat([dec.decode(b).packets for b in read_batches([path], chunk_packets=4096)])


def first(v: str) -> str:
    """tshark repeats fields of quoted headers (ICMP errors, tunnels): the outer one is first."""
    return v.split(",")[0] if v else ""


def _tags(t: dict[str, str]) -> tuple[int | None, int | None]:
    tags = [int(v) for v in (t["ieee8021ad.id"].split(",") if t["ieee8021ad.id"] else [])]
    tags += [int(v) for v in (t["vlan.id"].split(",") if t["vlan.id"] else [])]
    tags += [None, None]
    return tags[0], tags[1]


def expected_row(t: dict[str, str]) -> dict[str, object]:
    ip_src = first(t["ip.src"]) or first(t["ipv6.src"])
    ip_dst = first(t["ip.dst"]) or first(t["ipv6.dst"])
    sport = first(t["tcp.srcport"]) or first(t["udp.srcport"])
    dport = first(t["tcp.dstport"]) or first(t["udp.dstport"])
    icmp_type = first(t["icmp.type"]) or first(t["icmpv6.type"])
    icmp_code = first(t["icmp.code"]) or first(t["icmpv6.code"])
    return {
        "eth_src": first(t["eth.src"]) or first(t["sll.src.eth"]) or None,
        "eth_dst": first(t["eth.dst"]) or None,
        # an 802.1ad outer tag is ieee8021ad.id in tshark; 802.1Q tags are vlan.id, outer first
        "vlan": _tags(t)[0],
        "vlan_inner": _tags(t)[1],
        "src": str(ipaddress.ip_address(ip_src)) if ip_src else None,
        "dst": str(ipaddress.ip_address(ip_dst)) if ip_dst else None,
        "ttl": int(first(t["ip.ttl"]) or first(t["ipv6.hlim"])) if ip_src else None,
        "sport": int(sport) if sport else None,
        "dport": int(dport) if dport else None,
        "tcp_flags": int(first(t["tcp.flags"]), 16) if t["tcp.flags"] else None,
        "seq": int(first(t["tcp.seq_raw"])) if t["tcp.seq_raw"] else None,
        "ack": int(first(t["tcp.ack_raw"])) if t["tcp.ack_raw"] else None,
        "win": int(first(t["tcp.window_size_value"])) if t["tcp.window_size_value"] else None,
        "tcp_len": int(first(t["tcp.len"])) if t["tcp.len"] else None,
        "udp_len": int(first(t["udp.length"])) - 8 if t["udp.length"] else None,
        "icmp_type": int(icmp_type) if icmp_type else None,
        "icmp_code": int(icmp_code) if icmp_code else None,
        "arp_op": int(t["arp.opcode"]) if t["arp.opcode"] else None,
        "arp_sha": t["arp.src.hw_mac"] or None,
        "arp_spa": t["arp.src.proto_ipv4"] or None,
    }


def actual_row(r: dict) -> dict[str, object]:
    ip = r["ip_ver"] in (4, 6)
    tcp = r["tcp_flags"] is not None
    udp = r["ip_proto"] == 17 and r["sport"] is not None
    return {
        "eth_src": mac_to_text(r["eth_src"]) if r["eth_src"] is not None else None,
        "eth_dst": mac_to_text(r["eth_dst"]) if r["eth_dst"] is not None else None,
        "vlan": r["vlan"],
        "vlan_inner": r["vlan_inner"],
        "src": ip_to_text(r["src_hi"], r["src_lo"]) if ip else None,
        "dst": ip_to_text(r["dst_hi"], r["dst_lo"]) if ip else None,
        "ttl": r["ttl"] if ip else None,
        "sport": r["sport"],
        "dport": r["dport"],
        "tcp_flags": r["tcp_flags"],
        "seq": r["seq"],
        "ack": r["ack"],
        "win": r["win"],
        "tcp_len": r["pay_len"] if tcp else None,
        "udp_len": r["pay_len"] if udp else None,
        "icmp_type": r["icmp_type"],
        "icmp_code": r["icmp_code"],
        "arp_op": r["arp_op"],
        "arp_sha": mac_to_text(r["arp_sha"]) if r["arp_sha"] is not None else None,
        "arp_spa": str(ipaddress.IPv4Address(r["arp_spa"])) if r["arp_spa"] is not None else None,
    }


def compare_file(path: Path) -> list[str]:
    """Every disagreement between our layers and tshark's, one line each."""
    ours = decode_file(path)
    theirs = tshark_fields(path, FIELDS)
    if ours.height != len(theirs):
        return [f"{path.name}: {ours.height} records, tshark {len(theirs)}"]
    mismatches = []
    for r in ours.iter_rows(named=True):
        t = theirs[r["frame"]]
        exp, act = expected_row(t), actual_row(r)
        if t["ip.flags.mf"] == "1" or (t["ip.frag_offset"] not in ("", "0")):
            # fragments: tshark reassembles and reports the transport of the whole datagram on
            # the last fragment; we decode fragments one by one and report no transport there.
            for k in ("sport", "dport", "tcp_flags", "seq", "ack", "win", "tcp_len", "udp_len",
                      "icmp_type", "icmp_code"):
                exp.pop(k)
                act.pop(k)
        if t["frame.protocols"].startswith("eth:eth:"):
            # Cisco ISL (dst 01:00:0c:00:00:00): tshark dissects the ISL header as its own
            # protocol and reports the encapsulated frame's MACs as eth.*; we report the outer
            # header as seen on the wire. Neither is wrong; ISL is not decoded further here.
            for k in ("eth_src", "eth_dst"):
                exp.pop(k)
                act.pop(k)
        if exp.get("udp_len") is not None and r["caplen"] < r["wirelen"]:
            # snapped datagram: tshark gives the UDP length field, we give the captured bytes
            exp.pop("udp_len")
            act.pop("udp_len")
        for k, v in exp.items():
            if act[k] != v:
                mismatches.append(f"{path.name} frame {r['frame']}: {k} ours={act[k]!r} tshark={v!r}")
    return mismatches


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_layers_match_tshark(path: Path) -> None:
    mismatches = compare_file(path)
    assert not mismatches, "\n".join(mismatches[:20]) + f"\n({len(mismatches)} mismatches)"
