"""Identity from the wire, checked against tshark (and the ICSNPP Zeek logs as a second oracle).

Which capture proves what (every value compared frame by frame with tshark's field):
- S7 SZL 0x0011 and 0x001C: s7comm_snap7.pcap (and the ICSNPP s7ident.pcap). s7comm_diag_read.pcapng
  carries no SZL 0x0011 or 0x001C answer (its Read SZL answers are 0x0131 and 0x0424 only), so
  it yields no S7 identity; test_s7_diag_read_has_no_module_identification says so.
- CIP Identity: openics_EIP-FirmwareChange (Get_Attributes_All of the 1756-ENBT, direct),
  a slice of openics_EIP-SoftwareDownload (the 1756-L61 in backplane slot 0, routed through an
  Unconnected Send: a component, not the ENBT's own identity) and the ICSNPP enip_cip_example
  (List Identity).
- PROFINET DCP Identify response: profinet_PROFINET-RT-DCP_ChangeIPUsingDCP.pcap.
- BACnet I-Am: bacnet_sample.pcap (forwarded by a BBMD: the origin is the component) and the
  ICSNPP segmented-data trace. No real capture here carries vendor-name/model-name answers or a
  Modbus FC 43/14 answer: those are proven on built frames, with tshark decoding the same bytes.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.capture.files import read_batches
from plantwatch.core.decode import Decoder
from plantwatch.core.decode.addr import ip_texts
from plantwatch.core.synth import frames as f
from plantwatch.core.synth.pcapwriter import write_pcap
from tests.oracle import needs_tshark, tshark_fields, tshark_pdml

pytestmark = needs_tshark
DATA = Path(__file__).parent / "data"
REAL = DATA / "real"
ZEEK = DATA / "zeek"
SEP, AGG = "\x1e", "\x1f"


def identity(path: Path) -> pl.DataFrame:
    dec = Decoder()
    parts = [dec.decode(b).identity for b in read_batches([path])]
    df = pl.concat(parts)
    return df.with_columns(pl.Series("ip", ip_texts(df["hi"].to_numpy(), df["lo"].to_numpy())))


def by_frame(df: pl.DataFrame, component: str = "") -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for r in df.filter(pl.col("component") == component).iter_rows(named=True):
        out.setdefault(r["frame"], {})[r["attribute"]] = r["value"]
    return out


def fields(path: Path, names: list[str], flt: str) -> dict[int, dict[str, list[str]]]:
    rows = tshark_fields(path, names, flt, separator=SEP, aggregator=AGG)
    return {k: {n: v[n].split(AGG) for n in names} for k, v in rows.items()}


@pytest.mark.parametrize("path", [REAL / "s7comm_snap7.pcap", ZEEK / "s7ident" / "s7ident.pcap"])
def test_s7_szl_identity(path: Path) -> None:
    ours = by_frame(identity(path))
    mod = fields(path, ["s7comm.szl.xy11.0001.index", "s7comm.szl.xy11.0001.anz",
                        "s7comm.szl.xy11.0001.ausbg", "s7comm.szl.xy11.0001.ausbe", "ip.src"],
                 "s7comm.szl.xy11.0001.index")
    comp = fields(path, ["s7comm.szl.001c.0001.name", "s7comm.szl.001c.0002.name",
                         "s7comm.szl.001c.0005.serialn", "s7comm.szl.001c.0007.cputypname",
                         "s7comm.szl.001c.0004.copyright", "s7comm.szl.001c.0003.tag",
                         "s7comm.szl.001c.0008.snmcmmc"], "s7comm.szl.001c.0005.serialn")
    assert mod and comp
    for frame, t in mod.items():
        idx = [int(i, 16) for i in t["s7comm.szl.xy11.0001.index"]]
        k1, k7 = idx.index(1), idx.index(7)
        assert ours[frame]["model"] == t["s7comm.szl.xy11.0001.anz"][k1].strip()
        g, e = int(t["s7comm.szl.xy11.0001.ausbg"][k7]), int(t["s7comm.szl.xy11.0001.ausbe"][k7])
        assert ours[frame]["firmware"] == f"V{g & 0xFF}.{e >> 8}.{e & 0xFF}"
    for frame, t in comp.items():  # the answer split over two data units: on the last one
        assert ours[frame]["name"] == t["s7comm.szl.001c.0001.name"][0]
        assert ours[frame]["module_name"] == t["s7comm.szl.001c.0002.name"][0]
        assert ours[frame]["serial"] == t["s7comm.szl.001c.0005.serialn"][0]
        assert ours[frame]["module"] == t["s7comm.szl.001c.0007.cputypname"][0]
        assert ours[frame]["copyright"] == t["s7comm.szl.001c.0004.copyright"][0]
        assert ours[frame]["memory_card_serial"] == t["s7comm.szl.001c.0008.snmcmmc"][0]
        assert ours[frame].get("plant_tag", "") == t["s7comm.szl.001c.0003.tag"][0]  # blank: not stated
    assert set(ours) == set(mod) | set(comp)


def test_s7_plant_designation_built(tmp_path: Path) -> None:
    """SZL 0x001C index 3 (plant designation), blank in both real captures, on a built answer."""
    c = f.Leg.of(EWS_MAC, PLC_MAC, EWS, PLC)
    s = f.Leg.of(PLC_MAC, EWS_MAC, PLC, EWS)
    ses = f.TcpSession(c, s, 49301, 102, isn_client=5000, isn_server=70000)
    recs = ses.handshake(T0)
    comp = [(1, "S7300 station_1"), (3, "Line 4 filler"), (5, "S C-B1U393142011")]
    entries = [bytes([0, i]) + v.encode().ljust(32, b"\x00") for i, v in comp]
    recs += ses.send(recs[-1][0] + 1000, f.s7_szl_read(2, 0x001C), True)
    recs += ses.send(recs[-1][0] + 1000, f.s7_szl_response(2, 0x001C, 0, entries), False)
    path = tmp_path / "szl_001c.pcap"
    write_pcap(path, recs)
    theirs = fields(path, ["s7comm.szl.001c.0001.name", "s7comm.szl.001c.0003.tag", "s7comm.szl.001c.0005.serialn"],
                    "s7comm.szl.001c.0003.tag")
    assert list(theirs) == [len(recs)]
    t = theirs[len(recs)]
    assert by_frame(identity(path)) == {len(recs): {
        "name": t["s7comm.szl.001c.0001.name"][0], "plant_tag": t["s7comm.szl.001c.0003.tag"][0],
        "serial": t["s7comm.szl.001c.0005.serialn"][0]}}
    assert t["s7comm.szl.001c.0003.tag"][0] == "Line 4 filler"


def test_s7_snap7_values() -> None:
    got = by_frame(identity(REAL / "s7comm_snap7.pcap"))
    assert got[4] == {"model": "6ES7 315-2EH14-0AB0", "firmware": "V3.2.7"}
    assert got[8]["serial"] == "S C-B1U393142011" and got[8]["module"] == "CPU 315-2 PN/DP"


def test_s7ident_matches_icsnpp_known_devices() -> None:
    """The second oracle: ICSNPP's s7comm_known_devices.log for the same capture."""
    line = [x for x in (ZEEK / "s7ident" / "s7comm_known_devices.log").read_text().splitlines()
            if x and not x.startswith("#")][0].split("\t")
    system, module, serial = line[11], line[12], line[14]
    got = identity(ZEEK / "s7ident" / "s7ident.pcap")
    vals = {r["attribute"]: r["value"] for r in got.iter_rows(named=True)}
    assert (vals["name"], vals["module"], vals["serial"]) == (system, module, serial)


def test_s7_diag_read_has_no_module_identification() -> None:
    path = REAL / "s7comm_diag_read.pcapng"
    ids = {v for r in fields(path, ["s7comm.data.userdata.szl_id"], "s7comm.data.userdata.szl_id").values()
           for v in r["s7comm.data.userdata.szl_id"]}
    assert ids and not ids & {"0x0011", "0x001c"}
    assert identity(path).height == 0


CIP_FIELDS = ["cip.id.vendor_id", "cip.id.device_type", "cip.id.product_code", "cip.id.major_rev",
              "cip.id.minor_rev", "cip.id.serial_number", "cip.id.product_name"]


def _cip_expected(t: dict[str, list[str]]) -> dict[str, str]:
    v = {k: t[k][0] for k in CIP_FIELDS}
    return {"vendor_id": str(int(v["cip.id.vendor_id"], 16)), "device_type": str(int(v["cip.id.device_type"], 0)),
            "product_code": v["cip.id.product_code"],
            "firmware": f"{v['cip.id.major_rev']}.{int(v['cip.id.minor_rev']):03d}",
            "serial": v["cip.id.serial_number"], "product": v["cip.id.product_name"]}


@pytest.mark.parametrize("path,component", [
    (REAL / "openics_EIP-FirmwareChange_10650-10700.pcap", ""),
    (REAL / "openics_EIP-SoftwareDownload_1-60.pcap", "backplane slot 0"),
])
def test_cip_identity(path: Path, component: str) -> None:
    df = identity(path)
    theirs = fields(path, CIP_FIELDS, "cip.id.product_name")
    assert theirs
    assert set(df["component"].unique()) == {component}
    ours = by_frame(df, component)
    assert set(ours) == set(theirs)
    for frame, t in theirs.items():
        assert ours[frame] == _cip_expected(t)


def test_cip_get_attribute_list_routed() -> None:
    """The engineering tool reads the CPU's revision alone with Get_Attribute_List through the
    ENBT (frame 10, after a Get_Attributes_All on frame 8); the same read over a Forward Open
    connection (frame 4, Send Unit Data) is not attributed: the connection's path is not tracked."""
    path = REAL / "openics_EIP-SoftwareDownload_190-200.pcap"
    df = identity(path)
    theirs = fields(path, ["enip.command", *CIP_FIELDS], "cip.id.major_rev")
    unconnected = {k: t for k, t in theirs.items() if t["enip.command"] == ["0x006f"]}
    assert set(theirs) == {4, 8, 10} and set(unconnected) == {8, 10}
    assert set(df["component"]) == {"backplane slot 0"}
    ours = by_frame(df, "backplane slot 0")
    assert set(ours) == set(unconnected)
    assert ours[8] == _cip_expected(unconnected[8])
    t = unconnected[10]
    assert ours[10] == {"firmware": f"{t['cip.id.major_rev'][0]}.{int(t['cip.id.minor_rev'][0]):03d}"} == {
        "firmware": "16.020"}


def test_enip_list_identity_and_icsnpp_cip_identity() -> None:
    path = ZEEK / "enip" / "enip_cip_example.pcap"
    ours = by_frame(identity(path))
    theirs = fields(path, ["enip.lir.vendor", "enip.lir.devtype", "enip.lir.prodcode",
                           "enip.lir.revision", "enip.lir.serial", "enip.lir.name"], "enip.lir.name")
    assert theirs and set(ours) == set(theirs)
    for frame, t in theirs.items():
        rev = int(t["enip.lir.revision"][0])  # tshark: major, minor as one big-endian number
        assert ours[frame] == {
            "vendor_id": str(int(t["enip.lir.vendor"][0], 16)), "device_type": t["enip.lir.devtype"][0],
            "product_code": t["enip.lir.prodcode"][0], "firmware": f"{rev >> 8}.{rev & 0xFF:03d}",
            "serial": t["enip.lir.serial"][0], "product": t["enip.lir.name"][0]}
    # ICSNPP cip_identity.log: product name, revision "4.3" and serial of the same device
    row = [x for x in (ZEEK / "enip" / "cip_identity.log").read_text().splitlines()
           if x and not x.startswith("#")][0].split("\t")
    got = next(iter(ours.values()))
    assert got["product"] in row and got["serial"] in row
    assert "{}.{}".format(*[int(x) for x in got["firmware"].split(".")]) in row


@pytest.mark.parametrize("path", [REAL / "bacnet_sample.pcap",
                                  ZEEK / "bacnet_segmented" / "bacnet_segmented_data.pcap"])
def test_bacnet_i_am(path: Path) -> None:
    df = identity(path).filter(pl.col("attribute").is_in(["device_instance", "vendor_id"]))
    theirs = fields(path, ["bacapp.instance_number", "bacapp.vendor_identifier"],
                    "bacapp.unconfirmed_service == 0")
    assert theirs
    ours: dict[int, dict[str, str]] = {}
    for r in df.iter_rows(named=True):
        ours.setdefault(r["frame"], {})[r["attribute"]] = r["value"]
    assert set(ours) == set(theirs)
    for frame, t in theirs.items():
        assert ours[frame]["device_instance"] == t["bacapp.instance_number"][0]
        if t["bacapp.vendor_identifier"][0]:
            assert ours[frame]["vendor_id"] == t["bacapp.vendor_identifier"][0]


def test_bacnet_forwarded_i_am_names_the_origin() -> None:
    """bacnet_sample's I-Ams come from a BBMD (Forwarded-NPDU) and were routed before: the
    device is the origin's network and address (tshark's bvlc.fwd_ip and bacnet.snet/sadr), so
    the devices one router speaks for stay apart, each with its one device instance."""
    path = REAL / "bacnet_sample.pcap"
    df = identity(path)
    first = df.filter(pl.col("frame") == 12)
    assert set(first["ip"]) == {"10.21.86.4"}
    assert set(first["component"]) == {"forwarded from 10.21.56.7:47808, network 19301 address 01"}
    theirs = fields(path, ["bvlc.fwd_ip", "bvlc.fwd_port", "bacnet.snet", "bacnet.slen", "bacnet.sadr_mstp"],
                    "bacapp.unconfirmed_service == 0")
    assert theirs and all(t["bacnet.slen"] == ["1"] for t in theirs.values())
    comps = {r["frame"]: r["component"] for r in df.filter(pl.col("attribute") == "device_instance").iter_rows(named=True)}
    assert comps == {k: f"forwarded from {t['bvlc.fwd_ip'][0]}:{t['bvlc.fwd_port'][0]}, network "
                        f"{t['bacnet.snet'][0]} address {int(t['bacnet.sadr_mstp'][0]):02x}" for k, t in theirs.items()}
    per = df.filter(pl.col("attribute") == "device_instance").group_by("ip", "component").agg(
        pl.col("value").n_unique().alias("n"))
    assert per.height == 14 and set(per["n"]) == {1}


PLC_MAC, EWS_MAC = "00:0e:8c:11:22:33", "00:14:22:aa:bb:cc"
PLC, EWS = "10.20.20.10", "10.20.20.50"
BMS_MAC, BMS = "00:01:f0:44:55:66", "10.20.20.11"  # a BACnet building controller
T0 = 1_700_000_000_000_000_000


def _built(tmp_path: Path) -> Path:
    """Modbus FC 43/14 and BACnet ReadProperty(Multiple)-ACK answers as bytes on the wire."""
    c = f.Leg.of(EWS_MAC, PLC_MAC, EWS, PLC)
    s = f.Leg.of(PLC_MAC, EWS_MAC, PLC, EWS)
    mb = f.TcpSession(c, s, 49200, 502, isn_client=1000, isn_server=9000)
    recs = mb.handshake(T0)
    recs += mb.send(recs[-1][0] + 1000, f.modbus(7, 1, f.mb_read_device_id(1, 0)), True)
    recs += mb.send(recs[-1][0] + 1000, f.modbus(7, 1, f.mb_read_device_id_resp(
        [(0, b"Schneider Electric"), (1, b"BMX P34 2020"), (2, b"v3.10"), (4, b"Modicon M340")])), False)
    t = recs[-1][0]
    recs += [
        (t + 1000, f.udp_frame(BMS_MAC, EWS_MAC, BMS, EWS, 47808, 47808,
                               f.bacnet_read_property_ack_string(3, 1001, 121, "Delta Controls"))),
        (t + 2000, f.udp_frame(BMS_MAC, EWS_MAC, BMS, EWS, 47808, 47808,
                               f.bacnet_read_property_ack_string(4, 1001, 70, "eBCON"))),
        (t + 3000, f.udp_frame(BMS_MAC, EWS_MAC, BMS, EWS, 47808, 47808,
                               f.bacnet_read_property_multiple_ack(5, 1001, [(44, "3.40.1"), (12, "R2.2")]))),
    ]
    path = tmp_path / "built_identity.pcap"
    write_pcap(path, recs)
    return path


def test_modbus_device_identification_built(tmp_path: Path) -> None:
    path = _built(tmp_path)
    ours = by_frame(identity(path))
    theirs = fields(path, ["modbus.object_id", "modbus.object_str_value"], "modbus.object_str_value")
    assert len(theirs) == 1
    frame, t = next(iter(theirs.items()))
    names = {0: "vendor", 1: "product_code", 2: "firmware", 4: "product"}
    assert ours[frame] == {names[int(i)]: v for i, v in zip(t["modbus.object_id"], t["modbus.object_str_value"],
                                                            strict=True)}


def test_bacnet_read_property_built(tmp_path: Path) -> None:
    path = _built(tmp_path)
    ours = by_frame(identity(path))
    theirs = fields(path, ["bacapp.property_identifier", "bacapp.object_name", "bacapp.instance_number"],
                    "bacapp.confirmed_service == 12 || bacapp.confirmed_service == 14")
    assert len(theirs) == 3
    props = {"vendor-name": "vendor", "model-name": "model", "firmware-revision": "firmware",
             "application-software-version": "software"}
    # tshark shows the strings in its tree only ("vendor-name: UTF-8 'Delta Controls'")
    shown = re.compile(r'show="([a-z-]+): UTF-8 &#x27;(.*?)&#x27;"')
    pdml = tshark_pdml(path, "bacapp.confirmed_service == 12 || bacapp.confirmed_service == 14")
    frames = sorted(theirs)
    assert len(pdml) == len(frames) == 3
    for frame, text in zip(frames, pdml, strict=True):
        assert ours[frame] == {props[k]: html.unescape(v) for k, v in shown.findall(text)}
    assert [ours[fr] for fr in frames] == [
        {"vendor": "Delta Controls"}, {"model": "eBCON"}, {"firmware": "3.40.1", "software": "R2.2"}]


def test_profinet_dcp_identify_response() -> None:
    """The device is the address its DCP IP block announces (DCP has no IP header)."""
    path = REAL / "profinet_PROFINET-RT-DCP_ChangeIPUsingDCP.pcap"
    df = identity(path)
    theirs = fields(path, ["pn_dcp.suboption_device_nameofstation", "pn_dcp.suboption_vendor_id",
                           "pn_dcp.suboption_device_id", "pn_dcp.suboption_ip_ip",
                           "pn_dcp.suboption_device_devicevendorvalue"],
                    "pn_dcp.service_id == 5 && pn_dcp.service_type == 1")
    assert list(theirs) == [2]
    t = theirs[2]
    assert set(df["ip"]) == {t["pn_dcp.suboption_ip_ip"][0]}
    assert by_frame(df)[2] == {"name": t["pn_dcp.suboption_device_nameofstation"][0],
                               "product": t["pn_dcp.suboption_device_devicevendorvalue"][0],
                               "vendor_id": str(int(t["pn_dcp.suboption_vendor_id"][0], 16)),
                               "device_id": str(int(t["pn_dcp.suboption_device_id"][0], 16))}


def test_dhcp_vendor_class_and_parameter_list(tmp_path: Path) -> None:
    """Server side on Zeek's dhcp.pcap (an OFFER with option 60); client side on built frames:
    a client is the address it requests (it has none yet)."""
    zeek = ZEEK / "zeek_dhcp" / "dhcp.pcap"
    theirs = fields(zeek, ["dhcp.option.vendor_class_id", "ip.src"], "dhcp.option.vendor_class_id")
    df = identity(zeek)
    assert {(r["frame"], r["ip"], r["value"]) for r in df.iter_rows(named=True)} == {
        (k, t["ip.src"][0], t["dhcp.option.vendor_class_id"][0]) for k, t in theirs.items()}
    mac = "00:1b:1b:aa:00:01"
    msg = f.dhcp(3, 0x1234, mac, requested_ip="10.20.20.77", vendor_class="PROFINET IO device",
                 parameters=bytes([1, 3, 6, 12, 15, 28, 42]))
    path = tmp_path / "dhcp.pcap"
    write_pcap(path, [(T0, f.udp_frame(mac, "ff:ff:ff:ff:ff:ff", "0.0.0.0", "255.255.255.255", 68, 67, msg))])
    t = fields(path, ["dhcp.option.vendor_class_id", "dhcp.option.request_list_item",
                      "dhcp.option.requested_ip_address"], "dhcp")[1]
    got = identity(path)
    assert set(got["ip"]) == {t["dhcp.option.requested_ip_address"][0]}
    assert by_frame(got)[1] == {"dhcp_vendor_class": t["dhcp.option.vendor_class_id"][0],
                                "dhcp_parameters": ",".join(t["dhcp.option.request_list_item"])}


def test_tls_certificate_names_match_zeek_x509() -> None:
    """The leaf certificate's subject and issuer, stated by the server that sent it, as Zeek's
    x509.log writes them (the certificate decoder itself is checked against tshark in
    test_tshark_it.py)."""
    path = ZEEK / "zeek_ssl" / "tls-conn-with-extensions.pcap"
    leaf = [x.split("\t") for x in (ZEEK / "zeek_ssl" / "x509.log").read_text().splitlines()
            if x and not x.startswith("#")][0]
    server = fields(path, ["ip.src"], "tls.handshake.type == 11")
    df = identity(path)
    assert set(df["ip"]) == {v["ip.src"][0] for v in server.values()}
    assert by_frame(df) == {min(server): {"tls_certificate": leaf[4], "tls_certificate_issuer": leaf[5]}}


@pytest.mark.parametrize("path,field,flt,source", [
    # I-Am only: an UnconfirmedPrivateTransfer's vendor id names whose private service it is
    (REAL / "bacnet_sample.pcap", "bacapp.vendor_identifier", "bacapp.unconfirmed_service == 0", "bacnet"),
    (REAL / "openics_EIP-FirmwareChange_10650-10700.pcap", "cip.id.vendor_id", "cip.id.vendor_id", "enip"),
    (ZEEK / "enip" / "enip_cip_example.pcap", "enip.lir.vendor", "enip.lir.vendor", "enip"),
])
def test_vendor_names_equal_tsharks(path: Path, field: str, flt: str, source: str) -> None:
    """The vendor a stated vendor id names (the ODVA and ASHRAE registries), as tshark names it
    (bacnet_sample's I-Ams state three vendors, Danfoss Drives among them)."""
    from plantwatch.core.inventory.identity import vendor_table

    number = re.compile(r'<field name="frame.number"[^>]* show="(\d+)"')
    shown = re.compile(rf'<field name="{re.escape(field)}" showname="[^"]*?: (.*?) \((?:0x)?[0-9a-f]+\)"')
    theirs = {}
    for text in tshark_pdml(path, flt):
        names = {html.unescape(n) for n in shown.findall(text)}
        assert len(names) == 1
        theirs[int(number.search(text).group(1))] = names.pop()
    ids = identity(path).filter(pl.col("attribute") == "vendor_id")
    ours = {r["frame"]: vendor_table(source).get(int(r["value"])) for r in ids.iter_rows(named=True)}
    assert ours and ours == theirs
    assert None not in ours.values()
