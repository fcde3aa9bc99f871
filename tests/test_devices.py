"""The device inventory: MAC binding, routers, names, vendors, zones and roles."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.decode.addr import ip_to_text, text_to_mac
from plantwatch.core.decode.schema import (
    APP_DHCP,
    APP_DNS,
    APP_MODBUS,
    APP_NBNS,
    APP_S7,
    CLS_DISCOVER,
    CLS_READ,
    CLS_REPROGRAM,
    DIR_REQUEST,
    DIR_RESPONSE,
)
from plantwatch.core.flows.sessions import SessionTracker
from plantwatch.core.inventory import oui
from plantwatch.core.inventory.devices import DEVICES, DeviceInventory, infer_roles
from plantwatch.core.inventory.zones import Zones
from plantwatch.core.store import state as pipeline_state
from tests.test_sessions import (
    ACK,
    PSH,
    REAL,
    SYN,
    S,
    decode_sessions,
    frame_of,
    handshake,
    ops_of,
    pkt,
)

ROUTER = "00:1b:1b:00:00:fe"
ZONES = Zones.from_dict({"zone": [
    {"name": "Computing", "kind": "it", "cidrs": ["10.10.10.0/24"], "vlans": [10]},
    {"name": "Industrial", "kind": "ot", "cidrs": ["10.20.20.0/24"], "vlans": [20]},
]})


def inventory(rows: list[dict], ops: list[dict] | None = None, zones: Zones = ZONES) -> pl.DataFrame:
    p = frame_of(rows)
    o = ops_of(ops or [])
    tr, inv = SessionTracker(), DeviceInventory(zones)
    e = tr.update(p, o)
    inv.update(p, o, e, endpoints=tr.last_endpoints)
    inv.update(p.clear(), None, tr.flush())
    d = inv.devices()
    assert d.schema == pl.Schema(DEVICES)
    return d


def dev(d: pl.DataFrame, key: str) -> dict:
    r = d.filter(pl.col("device") == key)
    assert r.height == 1, (key, d["device"].to_list())
    return r.row(0, named=True)


def modbus_polling(t0: float, hmi: str, plcs: list[str], *, hmi_mac: str, plc_macs: list[str],
                   polls: int = 3, code: int = 3, cls: int = CLS_READ) -> tuple[list[dict], list[dict]]:
    rows: list[dict] = []
    for k, (plc, pm) in enumerate(zip(plcs, plc_macs, strict=True)):
        rows += handshake(t0 + k, hmi, plc, 41000 + k, 502, data=False, cmac=hmi_mac, smac=pm)
        for i in range(polls):
            t = t0 + k + 0.1 + i * 0.01
            rows += [pkt(t, hmi, plc, 41000 + k, 502, flags=PSH | ACK, pay=12, app=APP_MODBUS, smac=hmi_mac),
                     pkt(t + 0.001, plc, hmi, 502, 41000 + k, flags=PSH | ACK, pay=11, app=APP_MODBUS, smac=pm)]
    for frame_no, r in enumerate(rows, 1):
        r["frame"] = frame_no
    ops = [dict(file_id=0, frame=r["frame"], app=APP_MODBUS, code=code, cls=cls,
                direction=DIR_REQUEST if r["dport"] == 502 else DIR_RESPONSE, name="op")
           for r in rows if r["app"] == APP_MODBUS]
    return rows, ops


def test_router_mac_does_not_merge_subnets() -> None:
    rows = []
    # hosts in three other subnets and the internet, all seen behind the router's MAC
    for i, src in enumerate(["192.168.1.5", "192.168.2.5", "172.16.9.9", "8.8.8.8"]):
        rows += [pkt(i, src, "10.10.10.2", 53, 5000 + i, proto=17, pay=20, smac=ROUTER),
                 pkt(i + 0.1, "10.10.10.2", src, 5000 + i, 53, proto=17, pay=20, smac="00:0c:29:00:00:02")]
    # the router's own address, bound to its MAC by ARP
    rows.append(dict(pkt(9, "10.10.10.1", "10.10.10.2", proto=0, smac=ROUTER), ip_ver=0, src_hi=None,
                     src_lo=None, dst_hi=None, dst_lo=None, arp_op=2, arp_sha=text_to_mac(ROUTER),
                     arp_spa=(10 << 24) | (10 << 16) | (10 << 8) | 1))
    rows.append(pkt(9.5, "10.10.10.1", "10.10.10.2", proto=1, icmp_type=0, smac=ROUTER))
    d = inventory(rows)
    for ip in ("192.168.1.5", "192.168.2.5", "172.16.9.9", "8.8.8.8"):
        r = dev(d, ip)
        assert r["mac"] is None and not r["is_router"], ip
    assert dev(d, "8.8.8.8")["role"] == "external" and dev(d, "8.8.8.8")["zone_kind"] == "external"
    assert dev(d, "192.168.1.5")["zone"] == "internal"
    gw = dev(d, "10.10.10.1")
    assert gw["is_router"] and gw["role"] == "router" and gw["mac"] == text_to_mac(ROUTER)
    host = dev(d, "10.10.10.2")
    assert host["mac"] == text_to_mac("00:0c:29:00:00:02") and host["zone"] == "Computing"
    assert host["vendor"] and "VMware" in host["vendor"]


def test_router_without_arp_is_a_mac_only_device() -> None:
    rows = [pkt(i, src, "10.10.10.2", 53, 5000 + i, proto=17, smac=ROUTER)
            for i, src in enumerate(["192.168.1.5", "192.168.2.5"])]
    d = inventory(rows)
    r = dev(d, "00:1b:1b:00:00:fe")
    assert r["ip"] is None and r["role"] == "router" and r["is_router"]


def test_host_with_several_addresses_in_one_subnet_keeps_its_mac() -> None:
    m = "00:0c:29:00:00:07"
    rows = [pkt(0, "10.10.10.7", "10.10.10.2", 40000, 80, smac=m),
            pkt(1, "10.10.10.8", "10.10.10.2", 40001, 80, smac=m),
            pkt(2, "fe80::7", "fe80::2", 40002, 80, smac=m)]
    d = inventory(rows)
    assert dev(d, "10.10.10.7")["mac"] == text_to_mac(m)
    assert dev(d, "10.10.10.8")["mac"] == text_to_mac(m)
    assert dev(d, "fe80::7")["mac"] == text_to_mac(m)


def test_dhcp_hostname_names_the_device() -> None:
    m = "00:0c:29:aa:bb:cc"
    rows = [pkt(0, "0.0.0.0", "255.255.255.255", 68, 67, proto=17, smac=m, app=APP_DHCP, dhcp_type=3,
                dhcp_hostname="ENG-LAPTOP", dhcp_chaddr=text_to_mac(m), dhcp_req_ip="10.10.10.57"),
            pkt(5, "10.10.10.57", "10.20.20.5", 49200, 102, flags=0x02, smac=m)]
    d = inventory(rows)
    r = dev(d, "10.10.10.57")
    assert r["name"] == "ENG-LAPTOP" and r["name_source"] == "dhcp" and r["mac"] == text_to_mac(m)
    assert "0.0.0.0" not in d["device"].to_list() and "255.255.255.255" not in d["device"].to_list()


def test_dhcp_hostname_by_mac_only() -> None:
    m = "00:0c:29:aa:bb:cd"
    rows = [pkt(0, "10.10.10.60", "10.10.10.1", 68, 67, proto=17, smac=m, app=APP_DHCP, dhcp_type=3,
                dhcp_hostname="HMI-2", dhcp_chaddr=text_to_mac(m))]
    assert dev(inventory(rows), "10.10.10.60")["name"] == "HMI-2"


def test_dns_answer_names_the_address_and_wins_over_dhcp() -> None:
    m = "00:0c:29:aa:bb:ce"
    rows = [pkt(0, "10.10.10.5", "10.10.10.53", 5353, 53, proto=17, app=APP_DNS, dns_response=False,
                dns_qname="wincc.plant.local"),
            pkt(0.1, "10.10.10.53", "10.10.10.5", 53, 5353, proto=17, app=APP_DNS, dns_response=True,
                dns_qname="wincc.plant.local", dns_answers="10.20.20.9", dns_rcode=0),
            pkt(1, "10.20.20.9", "10.20.20.1", 68, 67, proto=17, smac=m, app=APP_DHCP,
                dhcp_hostname="WINCC01", dhcp_chaddr=text_to_mac(m))]
    r = dev(inventory(rows), "10.20.20.9")
    assert r["name"] == "wincc.plant.local" and r["name_source"] == "dns"
    assert set(r["names"]) == {"wincc.plant.local", "WINCC01"}
    assert r["zone"] == "Industrial" and r["zone_kind"] == "ot"


def test_nbns_response_names_its_sender() -> None:
    rows = [pkt(0, "10.10.10.8", "10.10.10.5", 137, 137, proto=17, app=APP_NBNS, nbns_name="WS-08<00>"),
            pkt(1, "10.10.10.5", "10.10.10.255", 137, 137, proto=17, app=APP_NBNS, nbns_name="OTHER<00>")]
    d = inventory(rows)
    assert dev(d, "10.10.10.8")["name"] == "WS-08"
    assert dev(d, "10.10.10.5")["name"] is None  # a broadcast query names nobody


def test_roles_plc_hmi_engineering() -> None:
    plcs = ["10.20.20.5", "10.20.20.6"]
    pm = ["00:1b:1b:00:00:05", "00:1b:1b:00:00:06"]
    rows, ops = modbus_polling(0, "10.10.10.2", plcs, hmi_mac="00:0c:29:00:00:02", plc_macs=pm, polls=20)
    r2, o2 = modbus_polling(10, "10.10.10.57", plcs[:1], hmi_mac="00:0c:29:00:00:57", plc_macs=pm[:1],
                            polls=1, code=43, cls=CLS_DISCOVER)
    n = len(rows)
    for r in r2:
        r["frame"] += n
    for o in o2:
        o["frame"] += n
    d = inventory(rows + r2, ops + o2)
    for plc in plcs:
        r = dev(d, plc)
        assert r["role"] == "plc" and r["ics_served"] == ["modbus"] and "serves modbus" in r["role_reasons"]
        assert r["zone_kind"] == "ot" and r["vendor"].startswith("Siemens")
    hmi = dev(d, "10.10.10.2")
    assert hmi["role"] == "hmi" and hmi["read_ops"] == 40 and hmi["ics_servers_read"] == 2
    assert "polls: 40 READ operation(s) to 2 ICS device(s)" in hmi["role_reasons"]
    assert hmi["ics_used"] == ["modbus"] and hmi["sessions_client"] == 2 and hmi["peers"] == 2
    eng = dev(d, "10.10.10.57")
    assert eng["role"] == "engineering" and eng["discover_ops"] == 1
    assert dev(d, "10.20.20.5")["clients"] == 2 and dev(d, "10.20.20.5")["ics_clients"] == 2


def test_roles_are_a_pure_function_of_counters() -> None:
    base = {k: 0 for k in ("ics_clients", "discover_ops", "reprogram_ops", "read_ops",
                            "ics_servers_read", "server_clients", "sessions_client")}
    rows = [
        dict(base, zone_kind="external", is_router=False, ics_served=[]),
        dict(base, zone_kind="it", is_router=True, ics_served=[]),
        dict(base, zone_kind="ot", is_router=False, ics_served=["s7comm"], ics_clients=2),
        dict(base, zone_kind="it", is_router=False, ics_served=[], reprogram_ops=1, read_ops=5,
             ics_servers_read=1),
        dict(base, zone_kind="it", is_router=False, ics_served=[], read_ops=100, ics_servers_read=1,
             discover_ops=2),
        dict(base, zone_kind="dmz", is_router=False, ics_served=[], server_clients=4),
        dict(base, zone_kind="it", is_router=False, ics_served=[], sessions_client=3),
        dict(base, zone_kind="it", is_router=False, ics_served=[]),
    ]
    r = infer_roles(pl.DataFrame(rows))
    assert r["role"].to_list() == ["external", "router", "plc", "engineering", "hmi", "server",
                                   "workstation", "unknown"]
    assert infer_roles(pl.DataFrame(rows))["role_reasons"].to_list() == r["role_reasons"].to_list()


def test_server_role_and_counters() -> None:
    rows = []
    for i in range(4):
        c = f"10.10.10.{20 + i}"
        rows += handshake(i, c, "10.10.10.80", 40000 + i, 443, cmac=f"00:0c:29:00:01:{i:02x}",
                          smac="00:0c:29:00:00:80")
    d = inventory(rows)
    srv = dev(d, "10.10.10.80")
    assert srv["role"] == "server" and srv["server_clients"] == 4 and srv["sessions_server"] == 4
    assert srv["pkts_sent"] == 8 and srv["pkts_recv"] == 12
    assert srv["first_ts"] == 0 and srv["last_ts"] == int(3.004 * S)
    assert dev(d, "10.10.10.20")["role"] == "workstation"


def test_open_sessions_overlay_counts_once() -> None:
    rows, ops = modbus_polling(0, "10.10.10.2", ["10.20.20.5"], hmi_mac="00:0c:29:00:00:02",
                               plc_macs=["00:1b:1b:00:00:05"])
    p, o = frame_of(rows), ops_of(ops)
    tr, inv = SessionTracker(), DeviceInventory(ZONES)
    e = tr.update(p, o)
    assert e.height == 0
    inv.update(p, o, e, tr.open_sessions())
    inv.update(p.clear(), None, None, tr.open_sessions())  # same open view again: not doubled
    assert dev(inv.devices(), "10.20.20.5")["role"] == "plc"
    assert dev(inv.devices(), "10.10.10.2")["sessions_client"] == 1
    inv.update(p.clear(), None, tr.flush(), tr.open_sessions())
    assert dev(inv.devices(), "10.10.10.2")["sessions_client"] == 1


def test_oui_lookup() -> None:
    t = oui.table()
    assert t.lookup(text_to_mac("00:1b:1b:12:34:56")).startswith("Siemens")
    assert t.lookup(text_to_mac("00:0c:29:12:34:56")).startswith("VMware")
    fb = oui.OuiTable.fallback()
    assert fb.lookup(text_to_mac("00:0e:8c:01:02:03")) == "Siemens AG"
    assert fb.lookup(text_to_mac("02:00:00:00:00:01")) == "(locally administered)"
    assert fb.lookup(text_to_mac("3c:99:99:00:00:01")) is None


@pytest.mark.skipif(not Path("/usr/share/wireshark/manuf").exists(), reason="no Wireshark manuf file")
def test_oui_28_and_36_bit_blocks() -> None:
    t = oui.OuiTable.from_manuf("/usr/share/wireshark/manuf")
    # 00:55:DA:10:00:00/28 and 00:1B:C5:00:10:00/36 are registered to different vendors than their /24
    assert t.lookup(text_to_mac("00:55:da:1f:ff:ff")) != t.lookup(text_to_mac("00:55:da:2f:ff:ff"))
    assert t.lookup(text_to_mac("00:1b:c5:00:10:01")) != t.lookup(text_to_mac("00:1b:c5:00:20:01"))
    assert t.lookup_many([0, text_to_mac("00:1b:1b:00:00:01")])[0] is None


def test_bundled_fallback_matches_manuf() -> None:
    if not Path("/usr/share/wireshark/manuf").exists():
        pytest.skip("no Wireshark manuf file")
    full = oui.OuiTable.from_manuf("/usr/share/wireshark/manuf")
    fb = oui.OuiTable.fallback()
    assert len(fb.p24) >= 40
    for prefix, name in fb.p24.items():
        assert full.p24.get(prefix) == name, hex(prefix)


def test_modbus_mixed_real_capture_roles() -> None:
    from plantwatch.core.capture.files import read_batches
    from plantwatch.core.decode import Decoder
    tr, dec, inv = SessionTracker(), Decoder(), DeviceInventory(Zones.default())
    for b in read_batches([str(REAL / "modbus_mixed_mb2.pcap")], chunk_packets=4096):
        d = dec.decode(b)
        inv.update(d.packets, d.ops, tr.update(d.packets, d.ops), tr.open_sessions())
    inv.update(d.packets.clear(), None, tr.flush(), None)
    devs = inv.devices()
    poller = dev(devs, "141.81.0.10")
    assert poller["role"] == "hmi" and poller["ics_servers_read"] >= 20
    assert set(poller["ics_used"]) >= {"modbus", "s7comm"}
    s = decode_sessions([REAL / "modbus_mixed_mb2.pcap"])
    mb = s.filter((pl.col("server_port") == 502) & (pl.col("n_ops") > 0))
    servers = {ip_to_text(h, lo) for h, lo in mb.select("server_hi", "server_lo").iter_rows()}
    assert len(servers) >= 10
    for ip in servers:
        r = dev(devs, ip)
        assert r["role"] == "plc" and "modbus" in r["ics_served"], ip
        assert r["mac"] is not None and r["zone"] == "internal"  # public range, local MACs


def test_reprogram_makes_engineering() -> None:
    rows = handshake(0, "10.10.10.57", "10.20.20.5", 49200, 102, data=False)
    rows.append(pkt(0.1, "10.10.10.57", "10.20.20.5", 49200, 102, flags=PSH | ACK, pay=40, app=APP_S7))
    ops = [dict(file_id=0, frame=4, app=APP_S7, code=0x1A, cls=CLS_REPROGRAM, direction=DIR_REQUEST,
                name="Request Download")]
    d = inventory(rows, ops)
    r = dev(d, "10.10.10.57")
    assert r["role"] == "engineering" and r["reprogram_ops"] == 1


@pytest.mark.parametrize("name", ["modbus_mixed_mb2.pcap", "c37118_mixed.pcap", "bacnet_sample.pcap"])
def test_endpoints_path_equals_packet_path(name: str) -> None:
    from plantwatch.core.capture.files import read_batches
    from plantwatch.core.decode import Decoder
    tr, dec = SessionTracker(), Decoder()
    by_packets, by_endpoints = DeviceInventory(ZONES), DeviceInventory(ZONES)
    for b in read_batches([str(REAL / name)], chunk_packets=3000):
        d = dec.decode(b)
        e = tr.update(d.packets, d.ops)
        by_packets.update(d.packets, d.ops, e)
        by_endpoints.update(d.packets, d.ops, e, endpoints=tr.last_endpoints)
    f = tr.flush()
    by_packets.update(d.packets.clear(), None, f)
    by_endpoints.update(d.packets.clear(), None, f)
    a, b = by_packets.devices(), by_endpoints.devices()
    assert a.height > 2
    assert a.equals(b)


def test_zone_by_vlan_for_a_device_outside_every_cidr() -> None:
    rows = [pkt(0, "192.168.77.5", "192.168.77.6", 40000, 502, flags=SYN, vlan=20,
                smac="00:1b:1b:00:77:05")]
    r = dev(inventory(rows), "192.168.77.5")
    assert (r["zone"], r["zone_kind"], r["vlan"]) == ("Industrial", "ot", 20)


def test_rebuild_from_sessions_matches_live_inventory() -> None:
    from plantwatch.core.capture.files import read_batches
    from plantwatch.core.decode import Decoder
    tr, dec, live = SessionTracker(), Decoder(), DeviceInventory(ZONES)
    stored = []
    for b in read_batches([str(REAL / "modbus_mixed_mb2.pcap")], chunk_packets=5000):
        d = dec.decode(b)
        e = tr.update(d.packets, d.ops)
        stored.append(e)
        live.update(d.packets, d.ops, e, endpoints=tr.last_endpoints)
    f = tr.flush()
    stored.append(f)
    live.update(d.packets.clear(), None, f)
    rebuilt = DeviceInventory.from_sessions(pl.concat(stored), ZONES)
    a, b = live.devices(), rebuilt.devices()
    assert a.height == b.height > 30
    assert a.drop("name", "name_source", "names").equals(b.drop("name", "name_source", "names"))


def test_inventory_survives_a_store_round_trip(tmp_path: Path) -> None:
    from plantwatch.core.store.database import Store
    rows, ops = modbus_polling(0, "10.10.10.2", ["10.20.20.5"], hmi_mac="00:0c:29:00:00:02",
                               plc_macs=["00:1b:1b:00:00:05"])
    rows.append(pkt(9, "10.10.10.2", "10.10.10.1", 68, 67, proto=17, smac="00:0c:29:00:00:02",
                    app=APP_DHCP, dhcp_hostname="HMI-1", dhcp_chaddr=text_to_mac("00:0c:29:00:00:02"),
                    frame=len(rows) + 1))
    p, o = frame_of(rows), ops_of(ops)
    tr, a = SessionTracker(), DeviceInventory(ZONES)
    a.update(p, o, tr.update(p, o), endpoints=tr.last_endpoints)
    a.update(p.clear(), None, tr.flush())      # rows still pending (not folded) when saved
    st = Store(tmp_path / "s.sqlite")
    pipeline_state.save(st, "devices", a)
    b = DeviceInventory(ZONES)
    assert pipeline_state.load(st, "devices", b)
    st.close()
    assert a.devices().equals(b.devices())
    assert dev(b.devices(), "10.10.10.2")["name"] == "HMI-1"


def test_a_stray_loopback_frame_makes_no_device() -> None:
    rows, ops = modbus_polling(0, "127.0.0.1", ["10.20.20.21"], hmi_mac="00:80:f4:00:00:09",
                               plc_macs=["00:1b:1b:00:00:21"])
    d = inventory(rows, ops)
    assert "127.0.0.1" not in d["device"].to_list()
    assert dev(d, "10.20.20.21")["role"] == "plc"
