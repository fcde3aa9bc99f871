"""bench/mixed.py at a tiny size, for both benchmark plants: the capture holds what the generator
claims (packet count and order with our reader; protocol mix, tags and clean decoding with tshark)
and is deterministic."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench import mixed
from plantwatch.core.capture.files import read_batches

N = 8000
SEED = 3

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

# Written out here rather than taken from mixed.KIND_PORTS, so a change there must be deliberate.
PORT_KIND = {502: "modbus", 102: "s7", 20000: "dnp3", 2404: "iec104", 44818: "enip", 445: "smb",
             443: "tls", 3389: "rdp", 53: "dns", 123: "udp", 514: "udp", 22: "failed",
             5900: "failed", 8080: "failed"}
# The protocol tshark must find on every payload-carrying packet of each ICS kind.
ICS_PROTO = {"modbus": "mbtcp", "s7": "cotp", "dnp3": "dnp3", "iec104": "iec60870_104",
             "enip": "enip"}
FIELDS = ("frame.protocols", "vlan.id", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
          "tcp.len", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.reset", "tls.handshake.type",
          "tls.handshake.extensions_server_name", "dns.flags.response", "rdp.rt_cookie",
          "s7comm.header.rosctr", "s7comm.param.func", "modbus.func_code", "arp.opcode",
          "_ws.expert.severity")
EXPERT_ERROR = 8388608  # PI_ERROR


VLAN = {"mixed": "20", "office": "30"}   # the tagged OT cell of each plant


@pytest.fixture(scope="module", params=sorted(mixed.PLANTS))
def capture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("bench") / f"{request.param}.pcapng"
    return path, mixed.generate(path, N, SEED, request.param)


@pytest.fixture(scope="module")
def rows(capture: tuple[Path, dict]) -> list[dict[str, str]]:
    cmd = ["tshark", "-n", "-r", str(capture[0]), "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=,"]
    for fld in FIELDS:
        cmd += ["-e", fld]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in out.splitlines()]


def test_reader_sees_every_packet_in_time_order(capture: tuple[Path, dict]) -> None:
    path, stats = capture
    batches = list(read_batches([path]))
    ts = np.concatenate([b.ts for b in batches])
    frames = np.concatenate([b.frame for b in batches])
    assert stats["packets"] == N == len(ts)
    assert sum(stats["kinds"].values()) == N
    assert (np.diff(ts) >= 0).all()
    assert frames.tolist() == list(range(1, N + 1))
    # pcapng with microsecond stamps: the first and last stamps, truncated to microseconds
    assert int(ts[0]) == stats["first_ts_ns"] // 1000 * 1000
    assert int(ts[-1]) == stats["last_ts_ns"] // 1000 * 1000


def test_deterministic_and_seeded(tmp_path: Path, capture: tuple[Path, dict]) -> None:
    again, other = tmp_path / "again.pcapng", tmp_path / "other.pcapng"
    plant = capture[1]["plant"]
    mixed.generate(again, N, SEED, plant)
    mixed.generate(other, N, SEED + 1, plant)
    assert again.read_bytes() == capture[0].read_bytes()
    assert other.read_bytes() != again.read_bytes()


def test_mix_looks_like_its_plant(capture: tuple[Path, dict]) -> None:
    kinds = capture[1]["kinds"]
    assert set(kinds) == set(mixed.KINDS)
    assert all(kinds[k] > 0 for k in mixed.KINDS), kinds
    ics = sum(kinds[k] for k in ("modbus", "s7", "dnp3", "iec104", "enip"))
    if capture[1]["plant"] == "mixed":
        assert ics > 0.5 * N                       # most packets are ICS polls...
        assert ics + kinds["smb"] > 0.75 * N        # ...and bulk TCP
    else:                                          # the office: mostly name lookups and browsing
        assert ics < 0.05 * N
        assert kinds["dns"] > 0.35 * N and kinds["tls"] > 0.2 * N and kinds["failed"] > 0.05 * N
    assert 0 < capture[1]["vlan_tagged"] < N    # some traffic tagged, not all


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("capture", ["office"], indirect=True)
def test_office_looks_up_many_distinct_names(capture: tuple[Path, dict]) -> None:
    cmd = ["tshark", "-n", "-r", str(capture[0]), "-Y", "dns.flags.response == 0", "-T", "fields",
           "-e", "dns.qry.name"]
    names = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    assert len(names) == capture[1]["tags"]["dns_query"]
    assert len(set(names)) > 0.2 * len(names) > 100


def test_cache_path_keys_on_parameters() -> None:
    a = mixed.cache_path(1000, 1)
    assert a != mixed.cache_path(1001, 1) != mixed.cache_path(1000, 2)
    assert a != mixed.cache_path(1000, 1, plant="office")
    assert f"v{mixed.VERSION}" in a.name


def _ports(r: dict[str, str]) -> set[int]:
    return {int(r[k]) for k in ("tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport") if r[k]}


@needs_tshark
@pytest.mark.tshark
def test_tshark_counts_match_the_claims(capture: tuple[Path, dict], rows: list[dict[str, str]]) -> None:
    stats = capture[1]
    tags = Counter(stats["tags"])
    assert len(rows) == N
    kinds: Counter[str] = Counter()
    for r in rows:
        if r["arp.opcode"]:
            kinds["arp"] += 1
            continue
        found = {PORT_KIND[p] for p in _ports(r) if p in PORT_KIND}
        assert len(found) == 1, r
        kinds[found.pop()] += 1
    assert dict(kinds) == {k: v for k, v in stats["kinds"].items() if v}

    assert sum(1 for r in rows if r["vlan.id"]) == stats["vlan_tagged"]
    assert {r["vlan.id"] for r in rows if r["vlan.id"]} == {VLAN[stats["plant"]]}
    assert sum(r["arp.opcode"] == "1" for r in rows) == tags["arp_request"]
    assert sum(r["arp.opcode"] == "2" for r in rows) == tags["arp_reply"]
    assert sum(r["dns.flags.response"] in ("0", "False") for r in rows) == tags["dns_query"]
    assert sum(r["dns.flags.response"] in ("1", "True") for r in rows) == tags["dns_response"]

    hello = [r for r in rows if "1" in r["tls.handshake.type"].split(",")]
    assert len(hello) == tags["tls_client_hello"] > 0
    names = set(mixed.SITES) | {"intranet.plant.local"}
    assert all(r["tls.handshake.extensions_server_name"] in names for r in hello)
    flights = [r for r in rows if "2" in r["tls.handshake.type"].split(",")]
    assert len(flights) == tags["tls_server_hello"]
    assert all("11" in r["tls.handshake.type"].split(",") for r in flights)

    cookies = [r["rdp.rt_cookie"] for r in rows if r["rdp.rt_cookie"]]
    assert len(cookies) == tags["rdp_cookie"] > 0
    assert all(c.startswith("Cookie: mstshash=") for c in cookies)

    s7_jobs = Counter(r["s7comm.param.func"] for r in rows if r["s7comm.header.rosctr"] == "1")
    assert s7_jobs["0x04"] == tags["s7_read"] > 0
    assert s7_jobs["0x05"] == tags["s7_write"]
    writes = [r for r in rows if r["modbus.func_code"] == "6" and r["tcp.dstport"] == "502"]
    assert len(writes) == tags["modbus_write"]
    assert sum(r["tcp.flags.reset"] in ("1", "True") for r in rows) == tags["syn_refused"] > 0
    syn22 = [r for r in rows if r["tcp.dstport"] == "22" and r["tcp.flags.syn"] in ("1", "True")]
    assert len(syn22) >= tags["syn_unanswered"] > 0


@needs_tshark
@pytest.mark.tshark
def test_tshark_decodes_every_ics_payload_cleanly(rows: list[dict[str, str]]) -> None:
    seen: Counter[str] = Counter()
    for r in rows:
        protos = r["frame.protocols"].split(":")
        assert "_ws.malformed" not in protos, r
        assert all(int(s) < EXPERT_ERROR for s in r["_ws.expert.severity"].split(",") if s), r
        kind = next((PORT_KIND[p] for p in _ports(r) if p in PORT_KIND), None)
        carries = (r["tcp.len"] and int(r["tcp.len"]) > 0) or "udp" in protos
        if kind in ICS_PROTO and carries:
            assert ICS_PROTO[kind] in protos, r
            seen[kind] += 1
    assert set(seen) == set(ICS_PROTO)
