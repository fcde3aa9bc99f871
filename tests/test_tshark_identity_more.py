"""Identity from OPC UA endpoint descriptions, HTTP `Server` headers and DNP3 device attributes,
the Modbus regular identification objects and the CIP Identity object read attribute by attribute,
checked against tshark's fields on a real capture and on built frames.

- OPC UA: OPC_opc-ua-ap-method-wireshark-freeze.pcap (a server on TCP 12001, two sessions; its
  GetEndpoints and CreateSession responses span several segments, reported on the completing one
  as tshark reassembles them) and a built GetEndpoints response on 4840 with a product URI.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plantwatch.core.capture.files import read_batches
from plantwatch.core.decode import Decoder
from plantwatch.core.decode.tls_cert import cert_facts
from plantwatch.core.synth import frames as f
from plantwatch.core.synth.pcapwriter import write_pcap
from tests.oracle import needs_tshark, tshark_fields

pytestmark = needs_tshark
REAL = Path(__file__).parent / "data" / "real"
OPCUA_REAL = REAL / "OPC_opc-ua-ap-method-wireshark-freeze.pcap"
SEP, AGG = "\x1e", "\x1f"
HMI_MAC, SRV_MAC = "00:14:22:aa:bb:cc", "00:0e:8c:11:22:33"
HMI, SRV = "10.20.20.50", "10.20.20.10"
T0 = 1_700_000_000_000_000_000


def identity(path: Path) -> pl.DataFrame:
    dec = Decoder()
    return pl.concat([dec.decode(b).identity for b in read_batches([path])])


def by_frame(df: pl.DataFrame, source: str) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for r in df.filter(pl.col("source") == source).iter_rows(named=True):
        out.setdefault(r["frame"], {})[r["attribute"]] = r["value"]
    return out


def fields(path: Path, names: list[str], flt: str, extra: list[str] | None = None) -> dict[int, dict[str, list[str]]]:
    rows = tshark_fields(path, names, flt, extra, separator=SEP, aggregator=AGG)
    return {k: {n: [x for x in v[n].split(AGG) if x] for n in names} for k, v in rows.items()}


def _opcua_expected(t: dict[str, list[str]]) -> dict[str, str]:
    """What the endpoints tshark decoded state: one distinct value per attribute."""
    exp = {}
    for attr, name in (("application_uri", "opcua.ApplicationUri"), ("product_uri", "opcua.ProductUri")):
        if t[name]:
            assert len(set(t[name])) == 1
            exp[attr] = t[name][0]
    certs = {cert_facts(bytes.fromhex(h.replace(":", "")))[0] for h in t["opcua.ServerCertificate"]}
    if certs:
        assert len(certs) == 1
        exp["opcua_certificate"] = certs.pop()
    return exp


def test_opcua_endpoints_real_capture() -> None:
    ours = by_frame(identity(OPCUA_REAL), "opcua")
    theirs = fields(OPCUA_REAL, ["opcua.ApplicationUri", "opcua.ProductUri", "opcua.ServerCertificate"],
                    "opcua.servicenodeid.numeric == 431 || opcua.servicenodeid.numeric == 464", ["-d", "tcp.port==12001,opcua"])
    assert sorted(theirs) == sorted(ours) == [20, 33, 66, 79]
    for frame, t in theirs.items():
        exp = _opcua_expected(t)
        assert {k: v for k, v in ours[frame].items() if k != "application_name"} == exp
        assert ours[frame]["application_name"] == "UA StackTest Server (AnsiC/2048)"
    assert ours[20]["application_uri"] == "http://vm-xp-steven/UA StackTest Server (AnsiC/2048)"


def _certificate(cn: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Automation")])
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(when).not_valid_after(when + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_opcua_get_endpoints_built(tmp_path: Path) -> None:
    """Three endpoints (None, Sign, SignAndEncrypt) of one server, the response cut over 2 segments."""
    cert = _certificate("ctrl-01 OPC UA Server")
    eps = [f.opcua_endpoint(f"opc.tcp://{SRV}:4840", "urn:ctrl-01:Example:UAServer", "urn:example.com:UAServer",
                            "Example UA Server <ctrl-01>", cert, mode, pol)
           for mode, pol in ((1, "http://opcfoundation.org/UA/SecurityPolicy#None"),
                             (2, "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"),
                             (3, "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"))]
    c = f.Leg.of(HMI_MAC, SRV_MAC, HMI, SRV)
    s = f.Leg.of(SRV_MAC, HMI_MAC, SRV, HMI)
    ua = f.TcpSession(c, s, 49300, f.OPCUA_PORT, isn_client=100, isn_server=5000)
    recs = ua.handshake(T0)
    msg = f.opcua_get_endpoints_response(eps)
    assert len(msg) > ua.mss
    recs += ua.send(recs[-1][0] + 1000, msg, False)
    path = tmp_path / "opcua.pcap"
    write_pcap(path, recs)
    ours = by_frame(identity(path), "opcua")
    theirs = fields(path, ["opcua.ApplicationUri", "opcua.ProductUri", "opcua.ServerCertificate"],
                    "opcua.servicenodeid.numeric == 431")
    assert list(theirs) == list(ours) == [len(recs)]
    frame = len(recs)
    assert ours[frame] == {**_opcua_expected(theirs[frame]), "application_name": "Example UA Server <ctrl-01>"}
    assert ours[frame]["product_uri"] == "urn:example.com:UAServer"
    assert ours[frame]["opcua_certificate"] == "O=Example Automation,CN=ctrl-01 OPC UA Server"


def test_http_server_real_capture() -> None:
    """c37118_mixed.pcap: a home router announces itself over SSDP (NOTIFY and search answers)."""
    path = REAL / "c37118_mixed.pcap"
    ours = by_frame(identity(path), "http")
    theirs = fields(path, ["http.server"], "http.server")
    assert len(theirs) == 60
    assert {k: v["http.server"] for k, v in theirs.items()} == {k: [v["http_server"]] for k, v in ours.items()}


def _http_capture(tmp_path: Path) -> Path:
    c = f.Leg.of(HMI_MAC, SRV_MAC, HMI, SRV)
    s = f.Leg.of(SRV_MAC, HMI_MAC, SRV, HMI)
    recs: list = []
    t = T0
    answers = [
        (80, f.http_response(200, "OK", [("Content-Type", "text/html"), ("Server", "Siemens SIMATIC S7-1200 Web Server")],
                             b"<html></html>")),
        (8000, f.http_response(401, "Unauthorized", [("server", "  GoAhead-Webs  "), ("WWW-Authenticate", 'Basic realm="x"')])),
        (8080, f.http_response(302, "Found", [("Location", "/index.htm")])),                     # no Server header
        (80, f.http_response(200, "OK", [("Server", b"evil\x1b[31m[bold]red[/bold]")])),        # hostile
    ]
    for i, (port, answer) in enumerate(answers):
        ses = f.TcpSession(c, s, 49400 + i, port, isn_client=100 * i, isn_server=7000 * i + 1)
        recs += ses.handshake(t)
        recs += ses.send(recs[-1][0] + 1000, b"GET / HTTP/1.1\r\nHost: " + SRV.encode() + b"\r\n\r\n", True)
        recs += ses.send(recs[-1][0] + 1000, answer, False)
        t = recs[-1][0] + 1_000_000
    tls = f.TcpSession(c, s, 49500, 8443, isn_client=5, isn_server=6)  # TLS on 8443: never HTTP
    recs += tls.handshake(t)
    recs += tls.send(recs[-1][0] + 1000, b"\x16\x03\x03\x00\x05HTTP/", False)
    path = tmp_path / "http.pcap"
    write_pcap(path, recs)
    return path


def test_http_server_built(tmp_path: Path) -> None:
    path = _http_capture(tmp_path)
    ours = by_frame(identity(path), "http")
    theirs = fields(path, ["http.server"], "http.server", ["-d", "tcp.port==8000,http"])
    assert sorted(ours) == sorted(theirs)
    assert [ours[k]["http_server"] for k in sorted(ours)] == [
        "Siemens SIMATIC S7-1200 Web Server", "GoAhead-Webs", "evil\x1b[31m[bold]red[/bold]"]
    for k, v in theirs.items():  # tshark shows the escape byte as \x1b and keeps the trailing
        # blanks, which RFC 9110 (5.5) excludes from the field value
        assert v["http.server"][0].replace("\\x1b", "\x1b").replace("\\u001b", "\x1b").strip() == ours[k]["http_server"]


def test_dnp3_device_attributes_built(tmp_path: Path) -> None:
    """A read of g0 v254 answered with the standard attribute set (strings) and a maximum
    fragment size (an unsigned integer, not identity)."""
    c = f.Leg.of(HMI_MAC, SRV_MAC, HMI, SRV)
    s = f.Leg.of(SRV_MAC, HMI_MAC, SRV, HMI)
    ses = f.TcpSession(c, s, 49600, f.DNP3_PORT, isn_client=10, isn_server=20)
    recs = ses.handshake(T0)
    req = bytes([0xC1, 1]) + bytes([0, 254, 0x06])
    recs += ses.send(recs[-1][0] + 1000, f.dnp3(10, 1, req), True)
    attrs = [(252, "Schweitzer Engineering Laboratories"), (250, "SEL-3530 RTAC"), (242, "R148-V2"),
             (243, "HW 2.1"), (248, "1234567890"), (247, "Substation 4 RTAC"), (245, "Bay 3")]
    app = f.dnp3_response_device_attributes(1, attrs)
    app += bytes([0, 240, 0x00, 0, 0, 2, 2]) + (2048).to_bytes(2, "little")  # g0v240 UINT
    recs += ses.send(recs[-1][0] + 1000, f.dnp3(1, 10, app, master=False), False)
    path = tmp_path / "dnp3_attrs.pcap"
    write_pcap(path, recs)
    ours = by_frame(identity(path), "dnp3")
    theirs = fields(path, ["dnp3.al.obj", "dnp3.al.da.value"], "dnp3.al.func == 129")
    assert list(ours) == list(theirs) == [len(recs)]
    t = theirs[len(recs)]
    objs = [int(o, 16) for o in t["dnp3.al.obj"]]
    assert objs == [v for v, _ in attrs] + [240]
    names = {252: "vendor", 250: "product", 242: "firmware", 243: "hardware", 248: "serial", 247: "name",
             245: "location"}
    assert ours[len(recs)] == {names[o]: v for o, v in zip(objs, t["dnp3.al.da.value"], strict=False)}


def test_opcua_server_status_build_info_built(tmp_path: Path) -> None:
    """A Read of ServerStatus answered whole: BuildInfo's manufacturer, product, software version
    and build number (after an Int32 result that must be skipped)."""
    c = f.Leg.of(HMI_MAC, SRV_MAC, HMI, SRV)
    s = f.Leg.of(SRV_MAC, HMI_MAC, SRV, HMI)
    ua = f.TcpSession(c, s, 49310, f.OPCUA_PORT, isn_client=300, isn_server=9000)
    recs = ua.handshake(T0)
    recs += ua.send(recs[-1][0] + 1000, f.opcua_read_server_status_response(
        "urn:example.com:UAServer", "Example Automation GmbH", "Example UA Server", "2.7.1", "4711"), False)
    path = tmp_path / "opcua_read.pcap"
    write_pcap(path, recs)
    ours = by_frame(identity(path), "opcua")
    names = {"opcua.ManufacturerName": "vendor", "opcua.ProductName": "product",
             "opcua.SoftwareVersion": "software", "opcua.BuildNumber": "build"}
    theirs = fields(path, list(names), "opcua.servicenodeid.numeric == 634")
    assert list(ours) == list(theirs) == [len(recs)]
    assert ours[len(recs)] == {a: theirs[len(recs)][n][0] for n, a in names.items()} == {
        "vendor": "Example Automation GmbH", "product": "Example UA Server", "software": "2.7.1", "build": "4711"}


def test_analyze_json_carries_the_new_sources_schema_valid(tmp_path: Path) -> None:
    """OPC UA, HTTP and DNP3 identity reach `analyze --json` under their source names."""
    import json

    import pytest

    jsonschema = pytest.importorskip("jsonschema")
    from tests.test_cli_analyze import analyze_json

    data = analyze_json(str(OPCUA_REAL))
    schema = json.loads((Path(__file__).parent.parent / "core" / "data" / "analyze.schema.json").read_text())
    jsonschema.validate(data, schema)
    dev = next(d for d in data["devices"] if d["device"] == "192.168.41.212")
    got = {a["attribute"]: a for a in dev["identity"]}
    assert got["application_uri"]["value"] == "http://vm-xp-steven/UA StackTest Server (AnsiC/2048)"
    assert got["application_uri"]["source"] == "opcua"
    assert got["application_uri"]["first_packet"]["frame"] == 20 and got["application_uri"]["last_packet"]["frame"] == 79
    http = analyze_json(str(_http_capture(tmp_path)))
    jsonschema.validate(http, schema)
    srv = next(d for d in http["devices"] if d["device"] == SRV)
    # one current value per attribute: the last one stated, given raw (escaping is the reader's)
    assert [a["value"] for a in srv["identity"] if a["attribute"] == "http_server"] == ["evil\x1b[31m[bold]red[/bold]"]


def test_device_screen_shows_a_hostile_server_header_escaped(tmp_path: Path) -> None:
    from plantwatch.core.pipeline.ingest import Ingest
    from plantwatch.core.store.database import Store
    from plantwatch.core.views.console.device_detail import device_detail
    from plantwatch.tui.screens.device import wire_identity_text

    with Store(tmp_path / "s.sqlite") as st:
        Ingest(st).run([_http_capture(tmp_path)])
        d = device_detail(st, SRV)
    assert d is not None
    text = wire_identity_text(d)
    line = next(x for x in text.plain.split("\n") if "http_server" in x)
    assert "\x1b" not in text.plain and "evil\\x1b[31m[bold]red[/bold]" in line
    assert line == "       http_server  evil\\x1b[31m[bold]red[/bold]  http, capture 1 frame 20"
    assert not any(s.style and "bold" in str(s.style) and text.plain[s.start:s.end] == "red" for s in text.spans)


def test_modbus_regular_device_identification_objects_built(tmp_path: Path) -> None:
    """The regular category (read code 2): vendor URL, model name and user application name,
    which the basic read test_tshark_identity.py checks does not carry."""
    c = f.Leg.of(HMI_MAC, SRV_MAC, HMI, SRV)
    s = f.Leg.of(SRV_MAC, HMI_MAC, SRV, HMI)
    mb = f.TcpSession(c, s, 49210, 502, isn_client=50, isn_server=90)
    recs = mb.handshake(T0)
    recs += mb.send(recs[-1][0] + 1000, f.modbus(3, 1, f.mb_read_device_id(2, 3)), True)
    recs += mb.send(recs[-1][0] + 1000, f.modbus(3, 1, f.mb_read_device_id_resp(
        [(3, b"www.se.com"), (5, b"BMX P34 2020"), (6, b"Line 4 filler")], code=2, conformity=0x02)), False)
    path = tmp_path / "modbus_regular.pcap"
    write_pcap(path, recs)
    ours = by_frame(identity(path), "modbus")
    theirs = fields(path, ["modbus.object_id", "modbus.object_str_value"], "modbus.object_str_value")
    assert list(ours) == list(theirs) == [len(recs)]
    t = theirs[len(recs)]
    names = {3: "vendor_url", 5: "model", 6: "user_app"}
    assert ours[len(recs)] == {names[int(i)]: v for i, v in zip(t["modbus.object_id"], t["modbus.object_str_value"],
                                                                 strict=True)} == {
        "vendor_url": "www.se.com", "model": "BMX P34 2020", "user_app": "Line 4 filler"}


def test_cip_identity_get_attribute_single_built(tmp_path: Path) -> None:
    """The Identity object read attribute by attribute (Get_Attribute_Single, 0x0E): each reply
    names its value only through the request it answers (matched by session and sender context)."""
    import struct

    plc_mac, plc = "00:00:bc:11:22:33", "10.20.20.12"
    c = f.Leg.of(HMI_MAC, plc_mac, HMI, plc)
    s = f.Leg.of(plc_mac, HMI_MAC, plc, HMI)
    ses = f.TcpSession(c, s, 49300, 44818, isn_client=1000, isn_server=9000)
    recs = ses.handshake(T0)
    recs += ses.send(recs[-1][0] + 1000, f.enip_register_session(0), True)
    recs += ses.send(recs[-1][0] + 1000, f.enip_register_session(0x1234), False)
    name = b"1769-L33ER/A LOGIX5333ER"
    answers = {1: struct.pack("<H", 1), 2: struct.pack("<H", 14), 3: struct.pack("<H", 104), 4: bytes([33, 11]),
               6: struct.pack("<I", 0x60D3A1B2), 7: bytes([len(name)]) + name}
    for k, (attr, data) in enumerate(answers.items()):
        ctx = struct.pack("<Q", 100 + k)
        recs += ses.send(recs[-1][0] + 1000, f.enip_send_rr_data(0x1234, f.cip_request(0x0E, 0x01, 1, attr), ctx), True)
        recs += ses.send(recs[-1][0] + 1000, f.enip_send_rr_data(0x1234, f.cip_response(0x0E, data), ctx), False)
    # an answer to a request for another class says nothing about identity
    ctx = struct.pack("<Q", 200)
    recs += ses.send(recs[-1][0] + 1000, f.enip_send_rr_data(0x1234, f.cip_request(0x0E, 0x02, 1, 7), ctx), True)
    recs += ses.send(recs[-1][0] + 1000, f.enip_send_rr_data(0x1234, f.cip_response(0x0E, answers[7]), ctx), False)
    path = tmp_path / "cip_single.pcap"
    write_pcap(path, recs)
    ours = by_frame(identity(path), "enip")
    cols = ["cip.id.vendor_id", "cip.id.device_type", "cip.id.product_code", "cip.id.major_rev",
            "cip.id.minor_rev", "cip.id.serial_number", "cip.id.product_name"]
    theirs = fields(path, cols, "cip.service == 0x8e")
    expect = {}
    for frame, t in theirs.items():
        v = {k: t[k][0] for k in cols if t[k]}
        got = {}
        if "cip.id.vendor_id" in v:
            got["vendor_id"] = str(int(v["cip.id.vendor_id"], 16))
        if "cip.id.device_type" in v:
            got["device_type"] = str(int(v["cip.id.device_type"], 16))
        if "cip.id.product_code" in v:
            got["product_code"] = v["cip.id.product_code"]
        if "cip.id.major_rev" in v:
            got["firmware"] = f"{v['cip.id.major_rev']}.{int(v['cip.id.minor_rev']):03d}"
        if "cip.id.serial_number" in v:
            got["serial"] = v["cip.id.serial_number"]
        if "cip.id.product_name" in v:
            got["product"] = v["cip.id.product_name"]
        if got:
            expect[frame] = got
    assert len(expect) == 6
    assert ours == expect
    assert {a: v for d in ours.values() for a, v in d.items()} == {
        "vendor_id": "1", "device_type": "14", "product_code": "104", "firmware": "33.011",
        "serial": "0x60d3a1b2", "product": "1769-L33ER/A LOGIX5333ER"}


def test_cip_identity_get_attribute_list_built(tmp_path: Path) -> None:
    """Get_Attribute_List (0x03) of every Identity attribute: an attribute the device refuses
    (status 0x14, no value) is skipped, the others are read in their sizes (status WORD included)."""
    import struct

    plc_mac, plc = "00:00:bc:11:22:34", "10.20.20.13"
    c = f.Leg.of(HMI_MAC, plc_mac, HMI, plc)
    s = f.Leg.of(plc_mac, HMI_MAC, plc, HMI)
    ses = f.TcpSession(c, s, 49301, 44818, isn_client=1000, isn_server=9000)
    recs = ses.handshake(T0)
    recs += ses.send(recs[-1][0] + 1000, f.enip_register_session(0), True)
    recs += ses.send(recs[-1][0] + 1000, f.enip_register_session(0x4321), False)
    name = b"1769-L33ER/A LOGIX5333ER"
    values = {1: struct.pack("<H", 1), 2: None, 3: struct.pack("<H", 104), 4: bytes([33, 11]),
              5: struct.pack("<H", 0x3060), 6: struct.pack("<I", 0x60D3A1B2), 7: bytes([len(name)]) + name}
    ask = struct.pack("<H", len(values)) + b"".join(struct.pack("<H", a) for a in values)
    reply = struct.pack("<H", len(values)) + b"".join(
        struct.pack("<HH", a, 0x14 if v is None else 0) + (v or b"") for a, v in values.items())
    ctx = struct.pack("<Q", 7)
    recs += ses.send(recs[-1][0] + 1000, f.enip_send_rr_data(0x4321, f.cip_request(0x03, 0x01, 1, None, ask), ctx), True)
    recs += ses.send(recs[-1][0] + 1000, f.enip_send_rr_data(0x4321, f.cip_response(0x03, reply), ctx), False)
    path = tmp_path / "cip_list.pcap"
    write_pcap(path, recs)
    cols = ["cip.id.vendor_id", "cip.id.device_type", "cip.id.product_code", "cip.id.major_rev",
            "cip.id.minor_rev", "cip.id.serial_number", "cip.id.product_name"]
    theirs = fields(path, cols, "cip.service == 0x83")
    assert list(theirs) == [len(recs)]
    t = theirs[len(recs)]
    assert not t["cip.id.device_type"]
    assert by_frame(identity(path), "enip") == {len(recs): {
        "vendor_id": str(int(t["cip.id.vendor_id"][0], 16)), "product_code": t["cip.id.product_code"][0],
        "firmware": f"{t['cip.id.major_rev'][0]}.{int(t['cip.id.minor_rev'][0]):03d}",
        "serial": t["cip.id.serial_number"][0], "product": t["cip.id.product_name"][0]}}
