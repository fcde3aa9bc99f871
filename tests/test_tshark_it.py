"""Differential test of the IT application decoders (TLS, RDP, DNS, DHCP, NBNS) against tshark.

Captures: the real ones in tests/data/real (c37118_mixed holds DNS, LLMNR and NBNS) and one crafted
here with core/synth/frames.py: TLS handshakes with and without SNI, with GREASE, a ClientHello over two
segments, TLS 1.3, self-signed (EC, RSA) and CA-signed certificate chains split over 2, 3 and 5
segments (IPv6, sequence numbers wrapping), RDP connection requests (hostile and non-ASCII cookies,
a routing token), DNS over UDP/TCP/mDNS with odd and looping names, DHCP and NBNS. Every frame
where either side reports something is compared field by field (tls.handshake.type/version/
extensions_server_name/ja3_full/ja3, the leaf tls.handshake.certificate parsed by cryptography,
rdp.rt_cookie, rdp.negReq.requestedProtocols, dns.id/flags.response/qry.name/qry.type/flags.rcode,
dns.a/dns.aaaa of the answer section, dhcp.option.dhcp/hostname/requested_ip_address,
dhcp.hw.mac_addr, nbns.name); a mismatch names the capture, frame and field.

Documented differences (see `excluded` and `compare`): ICMP errors quoting DNS, looping DNS names
(tshark prints a placeholder), non-ASCII RDP cookie bytes (tshark U+FFFD, ours Latin-1), and the
description tshark appends to an NBNS answer's name.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from functools import lru_cache
from pathlib import Path

import polars as pl
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from plantwatch.core.capture.files import read_batches
from plantwatch.core.decode import Decoder
from plantwatch.core.decode import tls as tls_mod
from plantwatch.core.synth import frames
from plantwatch.core.synth.pcapwriter import write_pcap
from tests.oracle import needs_tshark, tshark_fields

pytestmark = needs_tshark
REAL = sorted((Path(__file__).parent / "data" / "real").glob("*.pcap*"))

FIELDS = [
    "tls.handshake.type", "tls.handshake.version", "tls.handshake.extensions_server_name",
    "tls.handshake.ja3_full", "tls.handshake.ja3", "tls.handshake.certificate",
    "rdp.rt_cookie", "rdp.negReq.requestedProtocols",
    "dns.id", "dns.flags.response", "dns.qry.name", "dns.qry.type", "dns.flags.rcode",
    "dns.count.answers", "dns.resp.type", "dns.a", "dns.aaaa",
    "dhcp.option.dhcp", "dhcp.option.hostname", "dhcp.option.requested_ip_address",
    "dhcp.hw.type", "dhcp.hw.len", "dhcp.hw.mac_addr", "nbns.name", "nbns.flags.response",
]
SEP = "\x1e"   # field separator and aggregator that never occur in the values compared
AGG = "\x1f"

CLIENT = frames.Leg.of("00:1b:1b:00:00:10", "00:1b:1b:00:00:01", "10.10.10.57", "203.0.113.7")
SERVER = frames.Leg.of("00:1b:1b:00:00:01", "00:1b:1b:00:00:10", "203.0.113.7", "10.10.10.57")
CLIENT6 = frames.Leg.of("00:1b:1b:00:00:10", "00:1b:1b:00:00:01", "fd00::57", "2001:db8::7")
SERVER6 = frames.Leg.of("00:1b:1b:00:00:01", "00:1b:1b:00:00:10", "2001:db8::7", "fd00::57")
RND = bytes(range(32))


def _ext(t: int, body: bytes) -> bytes:
    return struct.pack("!HH", t, len(body)) + body


def _client_hello(exts: bytes, ciphers: tuple[int, ...]) -> bytes:
    body = (b"\x03\x03" + RND + b"\x00" + struct.pack(f"!H{len(ciphers)}H", 2 * len(ciphers), *ciphers)
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    return frames.tls_record(22, b"\x01" + len(body).to_bytes(3, "big") + body, 0x0301)


def _grease_client_hello(padding: int = 0) -> bytes:
    """GREASE in ciphers, extensions and groups, as Chrome sends; `padding` bytes of extension 21
    make it span segments (as post-quantum key shares do)."""
    name = b"grease.example"
    exts = (_ext(0x2A2A, b"") + _ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
            + _ext(10, struct.pack("!4H", 6, 0x8A8A, 0x001D, 0x0017)) + _ext(11, b"\x01\x00")
            + _ext(0x0017, b"") + _ext(0xFAFA, b"\x00"))
    if padding:
        exts += _ext(21, bytes(padding))
    return _client_hello(exts, (0x1A1A, 0x1301, 0xC02B))


def _tls13_hellos() -> tuple[bytes, bytes]:
    """A TLS 1.3 ClientHello and the ServerHello choosing 1.3, then CCS and encrypted records:
    the certificate is encrypted, so only the hellos can be reported."""
    ch = _client_hello(_ext(0, struct.pack("!HBH", 14, 0, 11) + b"tls13.local")
                       + _ext(43, b"\x04\x03\x04\x03\x03") + _ext(10, b"\x00\x02\x00\x1d")
                       + _ext(51, struct.pack("!HHH", 36, 0x1D, 32) + bytes(32)), (0x1301, 0x1302))
    exts = _ext(43, b"\x03\x04") + _ext(51, struct.pack("!HH", 0x1D, 32) + bytes(32))
    body = b"\x03\x03" + RND + b"\x00" + b"\x13\x01\x00" + struct.pack("!H", len(exts)) + exts
    sh = frames.tls_record(22, b"\x02" + len(body).to_bytes(3, "big") + body)
    return ch, sh + frames.tls_record(20, b"\x01") + frames.tls_app_data(bytes(700))


@lru_cache(maxsize=1)
def _rsa_chain() -> tuple[bytes, bytes]:
    """A self-signed RSA-2048 certificate and an unrelated CA certificate, made at test time."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wincc-gw.example"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ACME;\x1b[31m <i>")])
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(42).not_valid_before(t0)
            .not_valid_after(t0 + dt.timedelta(days=365)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER), frames.make_certificate("Other CA", seed=93)


def craft_records() -> list[tuple[int, bytes]]:
    """Every crafted conversation, as (ts_ns, frame) records in time order."""
    recs: list[tuple[int, bytes]] = []
    t = 1_700_000_000 * 10**9
    ca = frames.make_certificate("Plant Issuing CA", seed=90)
    leaf = frames.make_certificate("historian.plant.example", seed=91, issuer_cn="Plant Issuing CA",
                                   issuer_seed=90, org="Plant, Inc.")
    selfsigned = frames.make_certificate("c2.example.net", seed=92, org="Evil <b>Corp</b>")
    sessions = [
        # (sport, dport, client hello, server bytes, mss)
        (50001, 443, frames.tls_client_hello(RND, sni="historian.plant.example"),
         frames.tls_server_hello(RND) + frames.tls_certificate([leaf, ca])
         + frames.tls_server_hello_done(), 300),
        (50002, 443, frames.tls_client_hello(RND, sni=None, ciphers=frames.TLS_CIPHERS_TOOL),
         frames.tls_server_flight(RND, [selfsigned]), 150),
        (50003, 443, _grease_client_hello(), frames.tls_server_hello(RND), 1460),
        # IPv6, a ClientHello over two segments, an RSA certificate chain over five
        (50004, 8443, _grease_client_hello(padding=1700),
         frames.tls_server_flight(RND, list(_rsa_chain())), 536),
        (50005, 443, *_tls13_hellos(), 1460),
    ]
    for sport, dport, hello, flight, mss in sessions:
        c, sv = (CLIENT6, SERVER6) if sport == 50004 else (CLIENT, SERVER)
        s = frames.TcpSession(c, sv, sport, dport, mss=mss, isn_client=sport * 7,
                              isn_server=0xFFFFFFFF - 300 if sport == 50004 else sport * 11)
        recs += s.handshake(t)
        recs += s.exchange(t + 1_000_000, hello, flight)
        recs += s.exchange(t + 5_000_000, frames.tls_client_finish(bytes(65), bytes(40)),
                           frames.tls_server_finish(bytes(40)))
        recs += s.exchange(t + 9_000_000, frames.tls_app_data(bytes(300)), frames.tls_app_data(bytes(900)))
        recs += s.close(t + 12_000_000)
        t += 20_000_000
    # lone records: an unknown handshake type (tshark: "Encrypted Handshake Message"), a message
    # longer than its record (a fragment: nothing yet), a known type followed by an unknown one
    for i, rec in enumerate([bytes([0x63, 0, 0, 4, 1, 2, 3, 4]), bytes([0x0E, 0, 0, 9, 1, 2, 3, 4]),
                             bytes([0x0E, 0, 0, 0, 0x63, 0, 0, 0])]):
        recs.append((t + i * 1000, frames.tcp_frame(*_leg_args(SERVER), 443, 50020 + i,
                                                    frames.tls_record(22, rec), seq=77)))
    t += 1_000_000
    for sport, user in [(50010, "administrator"), (50011, "[bold]op[/bold]\x1b[31m;\x07x"),
                        (50012, None)]:
        s = frames.TcpSession(CLIENT, SERVER, sport, frames.RDP_PORT)
        recs += s.handshake(t)
        recs += s.exchange(t + 1_000_000, frames.rdp_connection_request(user, 3 if user else 1),
                           frames.rdp_connection_confirm())
        t += 10_000_000
    neg = struct.pack("<BBHI", 1, 0, 8, 11)
    for sport, cookie in [(50013, b"Cookie: msts=3640205228.15629.0000\r\n"),  # routing token
                          (50014, b"Cookie: mstshash=m\xfcller\r\n")]:         # an ANSI user name
        body = b"\xe0\x00\x00\x00\x00\x00" + cookie + neg
        s = frames.TcpSession(CLIENT, SERVER, sport, frames.RDP_PORT)
        recs += s.handshake(t)
        recs += s.exchange(t + 1_000_000, frames.tpkt(bytes([len(body)]) + body),
                           frames.rdp_connection_confirm())
        t += 10_000_000
    dns_c = ("00:1b:1b:00:00:10", "00:1b:1b:00:00:02", "10.10.10.57", "10.10.10.2")
    dns_s = ("00:1b:1b:00:00:02", "00:1b:1b:00:00:10", "10.10.10.2", "10.10.10.57")
    v6 = (struct.pack("!6H", 9, 0x8180, 1, 2, 0, 0) + frames.dns_name("v6.example")
          + struct.pack("!HH", 28, 1)
          + struct.pack("!HHHIH", 0xC00C, 28, 1, 60, 16) + bytes.fromhex("20010db8000000000000000000000001")
          + struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([192, 0, 2, 9]))
    for i, (q, r) in enumerate([
        (frames.dns_query(0x1111, "historian.plant.local"),
         frames.dns_response(0x1111, "historian.plant.local", ["10.1.2.3", "10.1.2.4"])),
        (frames.dns_query(0x2222, "nope.example"), frames.dns_response(0x2222, "nope.example", [], rcode=3)),
        (frames.dns_query(9, "v6.example", 28), v6),
        (_raw_query(10, b"\x05a b.c\x03com\x00"), _raw_query(11, b"\x07\x07\t\n\r\x1b\x7f\\\x00")),
        (_raw_query(12, b"\x05caf\xc3\xa9\x04caf\xc3\x00"), _raw_query(13, b"\x00", qtype=2)),
        (_raw_query(14, b"\xc0\x0c"), _raw_query(15, b"\x01a\xc0\x10\x01b\xc0\x0c")),  # loops
    ]):
        recs.append((t, frames.udp_frame(*dns_c, 40000 + i, 53, q)))
        recs.append((t + 500_000, frames.udp_frame(*dns_s, 53, 40000 + i, r)))
        t += 1_000_000
    s = frames.TcpSession(frames.Leg.of(*dns_c), frames.Leg.of(*dns_s), 40100, 53)
    q = frames.dns_query(0x3333, "tcp.plant.local", 15)
    recs += s.handshake(t)
    recs += s.exchange(t + 1_000_000, struct.pack("!H", len(q)) + q, b"")
    t += 5_000_000
    recs.append((t, frames.udp_frame("00:1b:1b:00:00:10", "01:00:5e:00:00:fb", "10.10.10.57",
                                     "224.0.0.251", 5353, 5353,
                                     frames.dns_query(0, "_http._tcp.local", 12))))
    mac = "00:1b:1b:aa:bb:cc"
    dhcp_msgs = [
        (True, frames.dhcp(frames.DHCP_DISCOVER, 0x55, mac, hostname="EWS-01")),
        (False, frames.dhcp(frames.DHCP_OFFER, 0x55, mac, your_ip="10.10.10.60", server_id="10.10.10.1")),
        (True, frames.dhcp(frames.DHCP_REQUEST, 0x55, mac, hostname="EWS-01",
                           requested_ip="10.10.10.60", server_id="10.10.10.1")),
        (False, frames.dhcp(frames.DHCP_ACK, 0x55, mac, your_ip="10.10.10.60", server_id="10.10.10.1")),
        (True, frames.dhcp(frames.DHCP_DISCOVER, 0x56, mac, hostname="PLC-HMI\x00")),  # NUL-terminated
        (True, _long_hw(frames.dhcp(8, 0x57, mac, hostname="odd\x7fname"))),  # INFORM; hlen 8: no MAC
    ]
    for i, (client, msg) in enumerate(dhcp_msgs):
        recs.append((t + i * 1_000_000, frames.udp_frame(
            mac if client else "00:1b:1b:00:00:01", "ff:ff:ff:ff:ff:ff",
            "0.0.0.0" if client else "10.10.10.1", "255.255.255.255",
            68 if client else 67, 67 if client else 68, msg)))
    t += 10_000_000
    for i, (name, suffix) in enumerate([("WPAD", 0), ("WORKGROUP", 0x1D), ("ENG-WS-07", 0x20)]):
        recs.append((t + i * 1_000_000, frames.udp_frame(
            "00:1b:1b:00:00:10", "ff:ff:ff:ff:ff:ff", "10.10.10.57", "10.10.10.255", 137, 137,
            frames.nbns_query(0x100 + i, name, suffix))))
    for i, raw in enumerate([b"*" + bytes(15), b"A\x01B" + b" " * 12 + b"\x1c"]):
        msg = struct.pack("!6H", 0x200 + i, 0, 1, 0, 0, 0) + _nb(raw) + b"\x00\x00\x21\x00\x01"
        recs.append((t + (i + 5) * 1_000_000, frames.udp_frame(
            "00:1b:1b:00:00:10", "00:1b:1b:00:00:11", "10.10.10.57", "10.10.10.58", 137, 137, msg)))
    answer = (struct.pack("!6H", 0x300, 0x8500, 0, 1, 0, 0) + _nb(b"HOST" + b" " * 11 + b"\x20")
              + b"\x05scope\x03net\x00" + struct.pack("!HHIH", 0x20, 1, 300, 6) + b"\x00\x00\x0a\x0a\x0a\x3a")
    recs.append((t + 9_000_000, frames.udp_frame(
        "00:1b:1b:00:00:11", "00:1b:1b:00:00:10", "10.10.10.58", "10.10.10.57", 137, 137, answer)))
    return recs


def _leg_args(leg: frames.Leg) -> tuple[bytes, bytes, bytes, bytes]:
    return leg.src_mac, leg.dst_mac, leg.src_ip, leg.dst_ip


def _raw_query(ident: int, qname: bytes, qtype: int = 1) -> bytes:
    return struct.pack("!6H", ident, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)


def _nb(raw16: bytes) -> bytes:
    """A NetBIOS name, first-level encoded, as the first label of a name."""
    return b"\x20" + bytes(b for c in raw16 for b in (0x41 + (c >> 4), 0x41 + (c & 15)))


def _long_hw(msg: bytes) -> bytes:
    return msg[:2] + b"\x08" + msg[3:]


# --------------------------------------------------------------------------- the oracle


def tshark_rows(path: Path) -> dict[int, dict[str, list[str]]]:
    """{frame: {field: [occurrences]}} for the frames where tshark reports any of FIELDS."""
    raw = tshark_fields(path, ["frame.protocols", *FIELDS], aggregator=AGG, separator=SEP)
    rows: dict[int, dict[str, list[str]]] = {}
    for frame, t in raw.items():
        vals = {"_proto": t["frame.protocols"].split(AGG) if t["frame.protocols"] else [],
                **{f: (t[f].split(AGG) if t[f] else []) for f in FIELDS}}
        if any(vals[f] for f in FIELDS):
            rows[frame] = vals
    return rows


def _first(t: dict[str, list[str]], field: str) -> str | None:
    v = t[field]
    return v[0] if v else None


def _int(v: str | None) -> int | None:
    return None if v is None else int(v, 0)


def answers(t: dict[str, list[str]]) -> str | None:
    """The A/AAAA addresses of the answer section, in order, from tshark's flat field lists
    (dns.resp.type lists every record, answers first; dns.a/dns.aaaa every address record)."""
    n = _int(_first(t, "dns.count.answers")) or 0
    a, aaaa = iter(t["dns.a"]), iter(t["dns.aaaa"])
    out = []
    for rtype in t["dns.resp.type"][:n]:
        if rtype == "1":
            out.append(next(a))
        elif rtype == "28":
            out.append(next(aaaa))
    return ",".join(out) or None


def cert_expect(hexder: str) -> dict[str, object]:
    """Subject, issuer and self-signedness of tshark's leaf certificate bytes, by cryptography."""
    cert = x509.load_der_x509_certificate(bytes.fromhex(hexder.replace(":", "")))
    signed = False
    if cert.issuer == cert.subject:
        try:
            cert.verify_directly_issued_by(cert)
            signed = True
        except Exception:  # noqa: BLE001
            signed = False
    return {"cert_subject": cert.subject.rfc4514_string(),
            "cert_issuer": cert.issuer.rfc4514_string(), "cert_self_signed": signed}


def expected(t: dict[str, list[str]]) -> dict[str, object]:
    cookie = _first(t, "rdp.rt_cookie")
    prefix = "Cookie: mstshash="
    resp = _first(t, "dns.flags.response")
    mac = _first(t, "dhcp.hw.mac_addr")
    hs = _int(_first(t, "tls.handshake.type"))
    e: dict[str, object] = {
        "tls_hs": hs,
        "tls_version": _int(_first(t, "tls.handshake.version")),
        "tls_sni": _first(t, "tls.handshake.extensions_server_name"),
        "tls_ja3": _first(t, "tls.handshake.ja3_full"),
        "tls_ja3_hash": _first(t, "tls.handshake.ja3"),
        "cert_subject": None, "cert_issuer": None, "cert_self_signed": None,
        "rdp_cookie": cookie[len(prefix):] if cookie and cookie.startswith(prefix) else None,
        "dhcp_chaddr": (int(mac.replace(":", ""), 16) if mac is not None
                        and _int(_first(t, "dhcp.hw.type")) == 1 and _int(_first(t, "dhcp.hw.len")) == 6
                        else None),  # otherwise the MAC tshark shows is option 61's, not chaddr
        "rdp_protocols": _int(_first(t, "rdp.negReq.requestedProtocols")),
        "dns_id": _int(_first(t, "dns.id")),
        "dns_response": None if resp is None else resp in ("1", "True"),
        "dns_qname": _first(t, "dns.qry.name"),
        "dns_qtype": _int(_first(t, "dns.qry.type")),
        "dns_rcode": _int(_first(t, "dns.flags.rcode")),
        "dns_answers": answers(t),
        "dhcp_type": _int(_first(t, "dhcp.option.dhcp")),
        "dhcp_hostname": _first(t, "dhcp.option.hostname"),
        "dhcp_req_ip": _first(t, "dhcp.option.requested_ip_address"),
        "nbns_name": _first(t, "nbns.name"),
    }
    if e["nbns_name"] and _first(t, "nbns.flags.response") in ("1", "True"):
        # tshark appends the name type's description to an answer's name, "HOST<20> (Server
        # service)"; that is presentation, not the name: ours is the bare name.
        e["nbns_name"] = re.sub(r" \([^()]*\)$", "", e["nbns_name"])
    der = _first(t, "tls.handshake.certificate")
    if der is not None:
        e.update(cert_expect(der))
    return e


COMPARED = [
    "tls_hs", "tls_version", "tls_sni", "tls_ja3", "tls_ja3_hash", "cert_subject", "cert_issuer",
    "cert_self_signed", "rdp_cookie", "rdp_protocols", "dns_id", "dns_response", "dns_qname",
    "dns_qtype", "dns_rcode", "dns_answers", "dhcp_type", "dhcp_hostname", "dhcp_req_ip",
    "dhcp_chaddr", "nbns_name",
]


def decode_file(path: Path, chunk: int = 4096) -> pl.DataFrame:
    dec = Decoder()
    return pl.concat([dec.decode(b).packets for b in read_batches([path], chunk_packets=chunk)])


LOOP_NAMES = ("<Name contains a pointer that loops>", "<Unknown extended label>")


def excluded(t: dict[str, list[str]]) -> bool:
    """Frames where tshark legitimately reports what we do not decode on purpose.

    - An ICMP error quotes the start of the packet that caused it; tshark dissects the quoted
      DNS/NBNS header, but those bytes describe another packet, so our decoders (rightly) do not
      report them as this frame's application data.
    - A DNS name whose compression pointers loop (or with an extended label type): tshark's name
      is a placeholder text and its qtype is read wherever its walk stopped (354 for a two-label
      loop); ours are null, which is the honest value (test_malformed_dns_names_are_null checks it).
    """
    protos = (t["_proto"] or [""])[0].split(":")
    return "icmp" in protos or "icmpv6" in protos or _first(t, "dns.qry.name") in LOOP_NAMES


def compare(path: Path, chunk: int = 4096) -> tuple[int, list[str]]:
    """(frames compared, mismatches as 'capture frame N field: ours != tshark')."""
    ours = decode_file(path, chunk).select(["frame", *COMPARED])
    ours_rows = {r["frame"]: r for r in ours.to_dicts()
                 if any(r[c] is not None for c in COMPARED)}
    theirs = tshark_rows(path)
    bad: list[str] = []
    frames_seen = 0
    for frame in sorted(set(ours_rows) | set(theirs)):
        t = theirs.get(frame)
        if t is not None and excluded(t):
            continue
        frames_seen += 1
        want = expected(t) if t is not None else dict.fromkeys(COMPARED)
        got = dict(ours_rows.get(frame) or dict.fromkeys(COMPARED))
        if got["rdp_cookie"] is not None:
            # The cookie is an ANSI string (MS-RDPBCGR): we keep its bytes as Latin-1 characters,
            # tshark reads it as ASCII and shows each byte above 0x7f as U+FFFD. Same bytes.
            got["rdp_cookie"] = "".join(c if ord(c) < 0x80 else "\ufffd" for c in got["rdp_cookie"])
        for c in COMPARED:
            if got[c] != want[c]:
                bad.append(f"{path.name} frame {frame} {c}: ours {got[c]!r} != tshark {want[c]!r}")
    return frames_seen, bad


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("it") / "it_crafted.pcap"
    write_pcap(path, craft_records())
    return path


@pytest.mark.parametrize("chunk", [4096, 3])
def test_crafted_capture_matches_tshark(crafted, chunk):
    """chunk=3 puts nearly every segment of a split handshake in its own batch: the reassembly
    state must carry across batches."""
    n, bad = compare(crafted, chunk)
    assert not bad, "\n".join(bad[:40])
    theirs = tshark_rows(crafted)
    # the capture exercises every decoder: guard against a silently empty comparison
    assert n >= 40
    for field in ["tls.handshake.certificate", "tls.handshake.extensions_server_name",
                  "rdp.rt_cookie", "dns.aaaa", "dhcp.option.hostname", "nbns.name"]:
        assert any(t[field] for t in theirs.values()), field
    hs = [int(t["tls.handshake.type"][0]) for t in theirs.values() if t["tls.handshake.type"]]
    assert {1, 2, 11} <= set(hs)


def test_malformed_dns_names_are_null(crafted):
    ours = decode_file(crafted)
    loops = [f for f, t in tshark_rows(crafted).items() if _first(t, "dns.qry.name") in LOOP_NAMES]
    assert len(loops) == 2
    got = ours.filter(pl.col("frame").is_in(loops))
    assert got["dns_id"].to_list() == [14, 15]
    assert got["dns_qname"].is_null().all() and got["dns_qtype"].is_null().all()


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_real_captures_match_tshark(path):
    n, bad = compare(path)
    assert not bad, "\n".join(bad[:40])
    if path.name == "c37118_mixed.pcap":
        assert n >= 140  # 143 DNS + 3 NBNS frames


def test_certificate_reported_on_the_completing_frame(crafted):
    """The split certificates (over 2, 3 and 5 segments) are reported where tshark reassembles
    them, and only there."""
    ours = decode_file(crafted)
    certs = ours.filter(pl.col("cert_subject").is_not_null())
    theirs = {f for f, t in tshark_rows(crafted).items() if t["tls.handshake.certificate"]}
    assert set(certs["frame"].to_list()) == theirs and len(theirs) == 3
    assert sorted(certs["cert_self_signed"].to_list()) == [False, True, True]
    assert tls_mod.MAX_FLOW_BYTES >= 16 * 1024
