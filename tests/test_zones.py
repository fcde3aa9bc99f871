"""Zones from TOML, and the address helpers they stand on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plantwatch.core.decode import addr
from plantwatch.core.inventory.zones import Zones, ZonesError

ZONES_TOML = """
[[zone]]
name = "Computing"
kind = "it"
cidrs = ["10.10.10.0/24"]
vlans = [10]

[[zone]]
name = "Industrial"
kind = "ot"
cidrs = ["10.20.20.0/24", "fd00:20::/64"]
vlans = [20]

[[zone]]
name = "PLC cell 7"
kind = "ot"
cidrs = ["10.20.20.128/25"]

[[zone]]
name = "DMZ"
kind = "dmz"
vlans = [30]
"""


@pytest.fixture()
def zones(tmp_path: Path) -> Zones:
    p = tmp_path / "zones.toml"
    p.write_text(ZONES_TOML)
    return Zones.load(p)


def test_classify_by_cidr_longest_prefix(zones: Zones) -> None:
    assert zones.classify_one("10.10.10.57") == ("Computing", "it")
    assert zones.classify_one("10.20.20.5") == ("Industrial", "ot")
    assert zones.classify_one("10.20.20.200") == ("PLC cell 7", "ot")
    assert zones.classify_one("fd00:20::5") == ("Industrial", "ot")


def test_classify_by_vlan_when_no_cidr_matches(zones: Zones) -> None:
    assert zones.classify_one("192.168.5.5", vlan=30) == ("DMZ", "dmz")
    assert zones.classify_one("192.168.5.5", vlan=20) == ("Industrial", "ot")
    # a CIDR match wins over the VLAN
    assert zones.classify_one("10.10.10.9", vlan=20) == ("Computing", "it")
    # internet hosts reach every VLAN through the router: the VLAN does not make them local
    assert zones.classify_one("203.0.113.7", vlan=20) == ("external", "external")


def test_internal_and_external(zones: Zones) -> None:
    assert zones.classify_one("192.168.1.1") == ("internal", "internal")
    assert zones.classify_one("172.16.0.1") == ("internal", "internal")
    assert zones.classify_one("fd12::1") == ("internal", "internal")
    assert zones.classify_one("fe80::1") == ("internal", "internal")
    assert zones.classify_one("169.254.1.1") == ("internal", "internal")
    assert zones.classify_one("8.8.8.8") == ("external", "external")
    assert zones.classify_one("2001:db8::1") == ("external", "external")
    assert Zones.default().classify_one("10.10.10.57") == ("internal", "internal")


def test_classify_vectorised(zones: Zones) -> None:
    ips = ["10.10.10.1", "10.20.20.1", "8.8.4.4", "10.99.0.1", "10.99.0.2"]
    pairs = [addr.text_to_ip(i) for i in ips]
    hi = np.array([p[0] for p in pairs], dtype=np.uint64)
    lo = np.array([p[1] for p in pairs], dtype=np.uint64)
    vlan = np.array([-1, -1, -1, 10, -1])
    names, kinds = zones.classify(hi, lo, vlan)
    assert names.tolist() == ["Computing", "Industrial", "external", "Computing", "internal"]
    assert kinds.tolist() == ["it", "ot", "external", "it", "internal"]


@pytest.mark.parametrize("text, problem", [
    ("[[zone]\nname='x'", "not valid TOML"),
    ("[[zone]]\nname='A'\nkind='scada'\ncidrs=['10.0.0.0/8']", "'kind' must be one of it, ot, dmz"),
    ("[[zone]]\nname='A'\nkind='it'\ncidrs=['10.0.0.300/8']", "bad CIDR '10.0.0.300/8'"),
    ("[[zone]]\nname='A'\nkind='it'\nvlans=[5000]", "VLAN id 5000 outside 0..4095"),
    ("[[zone]]\nname='A'\nkind='it'", "needs 'cidrs' or 'vlans'"),
    ("[[zone]]\nkind='it'\nvlans=[1]", "'name' must be a non-empty string"),
    ("[[zone]]\nname='A'\nkind='it'\nvlans=[1]\n[[zone]]\nname='A'\nkind='ot'\nvlans=[2]", "duplicate name"),
    ("[[zone]]\nname='A'\nkind='it'\nvlans=['10']", "'vlans' must be a list of integers"),
    ("[[zone]]\nname='A'\nkind='it'\nvlan=[10]", "unknown key 'vlan'"),
    ("zones = 1", "unknown top-level key 'zones'"),
])
def test_bad_toml_one_line_message(tmp_path: Path, text: str, problem: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ZonesError) as e:
        Zones.load(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: ") and problem in msg and "\n" not in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ZonesError, match="file not found"):
        Zones.load(tmp_path / "nope.toml")


# --- core/decode/addr.py -----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["10.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "fe80::1:2",
                                  "2001:db8::ff00:42:8329", "::ffff:1.2.3.4"])
def test_ip_text_roundtrip(text: str) -> None:
    hi, lo = addr.text_to_ip(text)
    back = addr.ip_to_text(hi, lo)
    assert addr.text_to_ip(back) == (hi, lo)
    if "." in text and ":" not in text:
        assert back == text and hi == 0 and lo >> 32 == 0xFFFF


def test_mac_text() -> None:
    assert addr.mac_to_text(0x001B1B0A0B0C) == "00:1b:1b:0a:0b:0c"
    assert addr.text_to_mac("00-1B-1B-0A-0B-0C") == 0x001B1B0A0B0C
    assert addr.mac_to_text(None) == ""


def test_classify_kinds() -> None:
    ips = ["10.1.2.3", "8.8.8.8", "127.0.0.1", "169.254.0.9", "224.0.0.251", "255.255.255.255",
           "0.0.0.0", "fd00::1", "fe80::1", "ff02::1", "::1", "2001:4860::8888", "100.64.1.1"]
    hi, lo = zip(*(addr.text_to_ip(i) for i in ips), strict=True)
    k = addr.classify(np.array(hi, dtype=np.uint64), np.array(lo, dtype=np.uint64))
    names = [addr.KIND_NAMES[int(x)] for x in k]
    assert names == ["private", "global", "loopback", "link-local", "multicast", "broadcast",
                     "unspecified", "private", "link-local", "multicast", "loopback", "global", "private"]


def test_in_cidr_and_texts() -> None:
    hi, lo = zip(*(addr.text_to_ip(i) for i in ["10.20.20.5", "10.20.21.5", "fd00:20::1"]), strict=True)
    h, low = np.array(hi, dtype=np.uint64), np.array(lo, dtype=np.uint64)
    assert addr.in_cidr(h, low, "10.20.20.0/24").tolist() == [True, False, False]
    assert addr.in_cidr(h, low, "fd00:20::/32").tolist() == [False, False, True]
    assert addr.ip_texts(h, low) == ["10.20.20.5", "10.20.21.5", "fd00:20::1"]


def test_hash_is_stable() -> None:
    # a fixed value: session ids stored by one run must match the next
    v = addr.hash_u64(np.array([1], dtype=np.uint64), np.array([2], dtype=np.uint64))
    assert int(v[0]) == 14032723126626878173
    assert int(v[0]) == int(addr.hash_u64(np.array([1]), np.array([2]))[0])
    assert int(v[0]) != int(addr.hash_u64(np.array([2]), np.array([1]))[0])
