"""Unit tests of the IT application decoders (TLS, RDP, DNS, DHCP, NBNS) on crafted payloads."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random
import struct

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from plantwatch.core.decode import dhcp, dns, nbns, rdp, tls
from plantwatch.core.decode.schema import APP_DHCP, APP_DNS, APP_NBNS, APP_RDP, APP_TLS
from plantwatch.core.decode.view import PacketView
from plantwatch.core.synth import frames

RND = bytes(range(32))


def run(mod, view: PacketView, state: dict | None = None) -> dict[int, dict]:
    """{row: decoded columns} of one module over one view."""
    state = {} if state is None else state
    rows = mod.select(view, state)
    res = mod.decode(view, rows, state)
    if res.columns is None:
        return {}
    return {d["row"]: d for d in res.columns.to_dicts()}


def segments(payloads: list[bytes], *, seqs: list[int] | None = None, sport: int = 443,
             dport: int = 50000) -> PacketView:
    """One TCP direction: the payloads with consecutive sequence numbers (or `seqs`)."""
    view = PacketView.from_payloads(payloads, sport=sport, dport=dport)
    if seqs is None:
        seqs = list(np.cumsum([1000] + [len(p) for p in payloads[:-1]]))
    return dataclasses.replace(view, seq=np.array(seqs, dtype=np.int64))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


# --------------------------------------------------------------------------- TLS ClientHello


def ja3_of(ciphers, exts, groups, formats, version=771) -> str:
    j = lambda xs: "-".join(str(x) for x in xs)  # noqa: E731
    return f"{version},{j(ciphers)},{j(exts)},{j(groups)},{j(formats)}"


def test_client_hello_with_sni_and_ja3():
    ch = frames.tls_client_hello(RND, sni="plc-vendor.example.com")
    got = run(tls, PacketView.from_payloads([ch], dport=443))[0]
    assert got["app"] == APP_TLS
    assert got["tls_hs"] == 1
    assert got["tls_version"] == 0x0303
    assert got["tls_sni"] == "plc-vendor.example.com"
    want = ja3_of(frames.TLS_CIPHERS_BROWSER, [0, 23, 65281, 10, 11, 35, 13], frames.TLS_GROUPS, [0])
    assert got["tls_ja3"] == want
    assert got["tls_ja3_hash"] == hashlib.md5(want.encode()).hexdigest()
    assert got["cert_subject"] is None


def test_client_hello_without_sni_any_port():
    ch = frames.tls_client_hello(RND, sni=None, ciphers=frames.TLS_CIPHERS_TOOL)
    got = run(tls, PacketView.from_payloads([ch], dport=8531))[0]
    assert got["tls_hs"] == 1
    assert got["tls_sni"] is None
    assert got["tls_ja3"] == ja3_of(frames.TLS_CIPHERS_TOOL, [23, 65281, 10, 11, 35, 13],
                                    frames.TLS_GROUPS, [0])


def grease_client_hello() -> bytes:
    """A ClientHello with GREASE in ciphers, extensions and groups (as Chrome sends)."""
    def ext(t: int, body: bytes) -> bytes:
        return struct.pack("!HH", t, len(body)) + body
    name = b"grease.example"
    exts = (ext(0x2A2A, b"") + ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
            + ext(10, struct.pack("!4H", 6, 0x8A8A, 0x001D, 0x0017)) + ext(11, b"\x01\x00")
            + ext(0xFAFA, b"\x00"))
    ciphers = (0x1A1A, 0x1301, 0xC02B)
    body = (b"\x03\x03" + RND + b"\x00" + struct.pack("!H3H", 6, *ciphers) + b"\x01\x00"
            + struct.pack("!H", len(exts)) + exts)
    return frames.tls_record(22, b"\x01" + len(body).to_bytes(3, "big") + body, 0x0301)


def test_client_hello_grease_removed():
    got = run(tls, PacketView.from_payloads([grease_client_hello()]))[0]
    assert got["tls_sni"] == "grease.example"
    assert got["tls_ja3"] == "771,4865-49195,0-10-11,29-23,0"


def test_server_hello():
    got = run(tls, segments([frames.tls_server_hello(RND)]))[0]
    assert (got["tls_hs"], got["tls_version"], got["tls_sni"]) == (2, 0x0303, None)


def test_not_tls_not_selected():
    view = PacketView.from_payloads([b"\x16\x03\x05\x00\x01\x00", b"GET / HTTP/1.1\r\n",
                                     b"\x17\x03\x03\x00\x02ab", b"\x16\x03"], dport=443)
    assert list(tls.select(view, {})) == []
    udp = PacketView.from_payloads([frames.tls_client_hello(RND)], proto=17)
    assert list(tls.select(udp, {})) == []


# --------------------------------------------------------------------------- certificates


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Plant, Inc."),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(cn: str, key, signer=None, issuer: str | None = None) -> bytes:
    """A certificate made at test time: self-signed unless signer/issuer are given."""
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(issuer or cn))
         .public_key(key.public_key()).serial_number(7).not_valid_before(t0)
         .not_valid_after(t0 + dt.timedelta(days=30)))
    s = signer or key
    algo = None if isinstance(s, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(s, algo).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def keys():
    return {"ec": ec.generate_private_key(ec.SECP256R1()),
            "rsa": rsa.generate_private_key(public_exponent=65537, key_size=1024),
            "ed": ed25519.Ed25519PrivateKey.generate(),
            "ca": ec.generate_private_key(ec.SECP384R1())}


@pytest.mark.parametrize("kind", ["ec", "rsa", "ed"])
def test_self_signed_certificate(keys, kind):
    der = make_cert("c2.example.net", keys[kind])
    got = run(tls, segments([frames.tls_certificate([der])]))[0]
    assert got["tls_hs"] == 11
    assert got["cert_subject"] == "CN=c2.example.net,O=Plant\\, Inc."
    assert got["cert_issuer"] == got["cert_subject"]
    assert got["cert_self_signed"] is True


def test_ca_signed_certificate_is_not_self_signed(keys):
    leaf = make_cert("www.example.org", keys["ec"], signer=keys["ca"], issuer="Example CA")
    ca = make_cert("Example CA", keys["ca"])
    got = run(tls, segments([frames.tls_certificate([leaf, ca])]))[0]
    assert got["cert_subject"] == "CN=www.example.org,O=Plant\\, Inc."
    assert got["cert_issuer"] == "CN=Example CA,O=Plant\\, Inc."
    assert got["cert_self_signed"] is False


def test_same_name_but_foreign_signature_is_not_self_signed(keys):
    der = make_cert("spoof", keys["ec"], signer=keys["ca"], issuer="spoof")
    got = run(tls, segments([frames.tls_certificate([der])]))[0]
    assert got["cert_subject"] == got["cert_issuer"]
    assert got["cert_self_signed"] is False


def test_garbage_certificate_does_not_raise():
    got = run(tls, segments([frames.tls_certificate([b"\x30\x82\x01\x00not a certificate"])]))[0]
    assert got["tls_hs"] == 11
    assert got["cert_subject"] is None and got["cert_self_signed"] is None


def test_certificate_split_over_three_segments(keys):
    der = make_cert("scada-historian", keys["rsa"])
    stream = frames.tls_server_hello(RND) + frames.tls_certificate([der]) + frames.tls_server_hello_done()
    sh_len = len(frames.tls_server_hello(RND))
    parts = split(stream, [sh_len + 100, sh_len + 300])
    got = run(tls, segments(parts))
    assert got[0]["tls_hs"] == 2 and got[0]["cert_subject"] is None
    assert got[1]["tls_hs"] is None and got[1]["app"] == APP_TLS  # a middle piece: nothing complete
    assert got[2]["tls_hs"] == 11
    assert got[2]["cert_subject"] == "CN=scada-historian,O=Plant\\, Inc."
    assert got[2]["cert_self_signed"] is True


def test_certificate_split_across_batches_and_state_dropped(keys):
    der = make_cert("split", keys["ec"])
    flight = frames.tls_server_flight(RND, [der])  # one record: SH + Certificate + Done
    parts = split(flight, [60, 200])
    seqs = [1000, 1060, 1200]
    state: dict = {}
    out = {}
    for i in range(3):  # one batch per segment: the pending flow is carried in state
        view = segments([parts[i]], seqs=[seqs[i]])
        out[i] = run(tls, view, state).get(0)
    assert out[0] is not None and out[0]["tls_hs"] is None
    assert out[1] is not None and out[1]["tls_hs"] is None
    assert out[2]["tls_hs"] == 2 and out[2]["cert_subject"] == "CN=split,O=Plant\\, Inc."
    assert not state["flows"] and not state["hashes"]
    # later application data of the flow is no longer selected
    assert len(tls.select(segments([b"\x17\x03\x03\x00\x10" + bytes(16)], seqs=[1500]), state)) == 0


def test_out_of_order_and_retransmitted_segments(keys):
    der = make_cert("ooo", keys["ec"])
    stream = frames.tls_certificate([der])
    parts = split(stream, [50, 150])
    seqs = [1, 51, 151]
    view = segments([parts[0], parts[2], parts[0], parts[1]], seqs=[seqs[0], seqs[2], seqs[0], seqs[1]])
    got = run(tls, view)
    assert 1 not in got or got[1]["tls_hs"] is None
    assert got[3]["tls_hs"] == 11 and got[3]["cert_self_signed"] is True
    assert all(got[r]["cert_subject"] is None for r in got if r != 3)


def test_encrypted_finished_after_change_cipher_spec_not_reported():
    finished = bytes([0x14, 0x00, 0x00, 0x0C]) + bytes(36)  # looks like a Finished header
    seg = frames.tls_client_finish(bytes(65), finished)
    got = run(tls, segments([seg]))[0]
    assert got["tls_hs"] == 16  # ClientKeyExchange only


def test_reassembly_state_is_bounded():
    cert_start = frames.tls_certificate([bytes(3000)])[:500]
    state: dict = {}
    for batch in range(3):
        n = 200
        view = PacketView.from_payloads([cert_start] * n)
        view = dataclasses.replace(view, sport=np.arange(n, dtype=np.int64) + 1000 * batch + 1)
        run(tls, view, state)
    assert len(state["flows"]) <= tls.MAX_FLOWS
    assert len(state["hashes"]) == len(state["flows"])


# --------------------------------------------------------------------------- RDP


def test_rdp_cookie_and_protocols():
    cr = frames.rdp_connection_request("administrator", 3)
    cc = frames.rdp_connection_confirm()
    got = run(rdp, PacketView.from_payloads([cr, cc, b"\x03\x00\x00\x07\x02\xf0\x80"], dport=3389))
    assert got[0]["app"] == APP_RDP
    assert (got[0]["rdp_cookie"], got[0]["rdp_protocols"], got[0]["cotp_type"]) == ("administrator", 3, 0x0E)
    assert (got[1]["rdp_cookie"], got[1]["cotp_type"]) == (None, 0x0D)
    assert got[2]["cotp_type"] == 0x0F


def test_rdp_hostile_cookie_kept_verbatim():
    user = "[bold]adm[/bold]\x1b[31m\x07\x00\t;rm -rf"
    cr = frames.rdp_connection_request(user, 0)
    got = run(rdp, PacketView.from_payloads([cr], dport=3389))[0]
    assert got["rdp_cookie"] == user
    assert got["rdp_protocols"] == 0


def test_rdp_routing_token_and_no_cookie():
    token = b"Cookie: msts=3640205228.15629.0000\r\n"
    neg = struct.pack("<BBHI", 1, 0, 8, 11)
    body = b"\xe0\x00\x00\x00\x00\x00" + token + neg
    cr = frames.tpkt(bytes([len(body)]) + body)
    bare = frames.rdp_connection_request(None, 1)
    got = run(rdp, PacketView.from_payloads([cr, bare], sport=3389, dport=50000))
    assert (got[0]["rdp_cookie"], got[0]["rdp_protocols"]) == (None, 11)
    assert (got[1]["rdp_cookie"], got[1]["rdp_protocols"]) == (None, 1)


def test_rdp_latin1_cookie_and_other_ports():
    body = b"\xe0\x00\x00\x00\x00\x00Cookie: mstshash=m\xfcller\r\n"
    cr = frames.tpkt(bytes([len(body)]) + body)
    assert run(rdp, PacketView.from_payloads([cr], dport=3389))[0]["rdp_cookie"] == "m\u00fcller"
    assert run(rdp, PacketView.from_payloads([cr], dport=102)) == {}


# --------------------------------------------------------------------------- DNS


def aaaa_response(ident: int, name: str) -> bytes:
    q = frames.dns_name(name) + struct.pack("!HH", 28, 1)
    cname = struct.pack("!HHHIH", 0xC00C, 5, 1, 60, 4) + b"\x01x\xc0\x0c"
    a6 = struct.pack("!HHHIH", 0xC00C, 28, 1, 60, 16) + bytes.fromhex("20010db8000000000000000000000001")
    a4 = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([192, 0, 2, 9])
    extra = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([10, 0, 0, 1])  # additional section
    return struct.pack("!6H", ident, 0x8180, 1, 3, 0, 1) + q + cname + a6 + a4 + extra


def test_dns_query_and_responses():
    q = frames.dns_query(0x1234, "historian.plant.local")
    r = frames.dns_response(0x1234, "historian.plant.local", ["10.1.2.3", "10.1.2.4"])
    nx = frames.dns_response(7, "nope.example", [], rcode=3)
    got = run(dns, PacketView.from_payloads([q, r, nx, aaaa_response(9, "v6.example")], proto=17,
                                            dport=53))
    assert got[0] == {"row": 0, "app": APP_DNS, "dns_id": 0x1234, "dns_response": False,
                      "dns_qname": "historian.plant.local", "dns_qtype": 1, "dns_rcode": None,
                      "dns_answers": None}
    assert got[1]["dns_response"] is True and got[1]["dns_rcode"] == 0
    assert got[1]["dns_answers"] == "10.1.2.3,10.1.2.4"
    assert (got[2]["dns_rcode"], got[2]["dns_answers"]) == (3, None)
    assert (got[3]["dns_qtype"], got[3]["dns_answers"]) == (28, "2001:db8::1,192.0.2.9")


def test_dns_tcp_length_prefix_and_mdns():
    q = frames.dns_query(5, "a.b")
    tcp = PacketView.from_payloads([struct.pack("!H", len(q)) + q], proto=6, dport=53)
    assert run(dns, tcp)[0]["dns_qname"] == "a.b"
    mdns = PacketView.from_payloads([frames.dns_query(0, "_http._tcp.local", 12)], proto=17,
                                    sport=5353, dport=5353)
    assert run(dns, mdns)[0]["dns_qname"] == "_http._tcp.local"
    assert run(dns, PacketView.from_payloads([q], proto=17, dport=54)) == {}


def test_dns_compression_loops_and_root():
    hdr = struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0)
    self_loop = hdr + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    two_loop = hdr + b"\x01a\xc0\x10\x01b\xc0\x0c" + b"\x00\x01\x00\x01"
    forward = hdr + b"\xc0\x12\x00\x01\x00\x01" + b"\x03abc\x00"
    root = hdr + b"\x00\x00\x02\x00\x01"
    got = run(dns, PacketView.from_payloads([self_loop, two_loop, forward, root], proto=17, dport=53))
    assert got[0]["dns_qname"] is None and got[0]["dns_id"] == 1
    assert got[1]["dns_qname"] is None
    assert got[2]["dns_qname"] == "abc"
    assert (got[3]["dns_qname"], got[3]["dns_qtype"]) == ("<Root>", 2)


# --------------------------------------------------------------------------- DHCP / NBNS


def test_dhcp_discover_and_request():
    mac = "00:1b:1b:aa:bb:cc"
    disc = frames.dhcp(frames.DHCP_DISCOVER, 1, mac, hostname="EWS-01")
    req = frames.dhcp(frames.DHCP_REQUEST, 1, mac, hostname="EWS-01", requested_ip="10.0.0.50")
    ack = frames.dhcp(frames.DHCP_ACK, 1, mac, your_ip="10.0.0.50", server_id="10.0.0.1")
    view = PacketView.from_payloads([disc, req, ack, disc[:239]], proto=17, sport=68, dport=67)
    got = run(dhcp, view)
    assert got[0] == {"row": 0, "app": APP_DHCP, "dhcp_type": 1, "dhcp_hostname": "EWS-01",
                      "dhcp_req_ip": None, "dhcp_chaddr": 0x001B1BAABBCC}
    assert (got[1]["dhcp_type"], got[1]["dhcp_req_ip"]) == (3, "10.0.0.50")
    assert (got[2]["dhcp_type"], got[2]["dhcp_hostname"]) == (5, None)
    assert 3 not in got


def test_nbns_names():
    q = frames.nbns_query(1, "wpad")
    wg = frames.nbns_query(2, "WORKGROUP", 0x1D)
    star = struct.pack("!6H", 3, 0, 1, 0, 0, 0) + b"\x20" + bytes(
        b for c in b"*" + bytes(15) for b in (0x41 + (c >> 4), 0x41 + (c & 15))) + b"\x00\x00\x21\x00\x01"
    bad = struct.pack("!6H", 4, 0, 1, 0, 0, 0) + b"\x20" + b"Z" * 32 + b"\x00\x00\x20\x00\x01"
    got = run(nbns, PacketView.from_payloads([q, wg, star, bad], proto=17, sport=137, dport=137))
    assert got[0]["app"] == APP_NBNS
    assert got[0]["nbns_name"] == "WPAD<00>"
    assert got[1]["nbns_name"] == "WORKGROUP<1d>"
    assert got[2]["nbns_name"] == "*" + "<00>" * 15
    assert got[3]["nbns_name"] is None


# --------------------------------------------------------------------------- never raise


def _samples() -> list[tuple[object, bytes, int, int, int]]:
    der = frames.make_certificate("fuzz")
    return [
        (tls, frames.tls_client_hello(RND, sni="x.example"), 6, 50000, 443),
        (tls, grease_client_hello(), 6, 50000, 443),
        (tls, frames.tls_server_flight(RND, [der]), 6, 443, 50000),
        (rdp, frames.rdp_connection_request("admin"), 6, 50000, 3389),
        (dns, aaaa_response(1, "a.example"), 17, 53, 50000),
        (dns, b"\x00\x20" + frames.dns_query(1, "tcp.example"), 6, 50000, 53),
        (dhcp, frames.dhcp(frames.DHCP_REQUEST, 1, "00:00:00:00:00:01", hostname="h",
                           requested_ip="10.0.0.2"), 17, 68, 67),
        (nbns, frames.nbns_query(1, "HOST"), 17, 137, 137),
    ]


@pytest.mark.parametrize("idx", range(8))
def test_truncated_and_mutated_payloads_never_raise(idx):
    mod, good, proto, sport, dport = _samples()[idx]
    rng = random.Random(idx)
    payloads = [good[:n] for n in range(len(good) + 1)]
    for _ in range(300):
        b = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        payloads.append(bytes(b))
    payloads.append(bytes(rng.randrange(256) for _ in range(400)))
    view = PacketView.from_payloads(payloads, proto=proto, sport=sport, dport=dport)
    state: dict = {}
    res = mod.decode(view, mod.select(view, state), state)
    assert res.columns is not None and res.columns.height >= 1
    assert res.columns["row"].is_unique().all()


def test_interleaved_flows_reassemble_separately(keys):
    a = frames.tls_certificate([make_cert("flow-a", keys["ec"])])
    b = frames.tls_certificate([make_cert("flow-b", keys["rsa"])])
    pa, pb = split(a, [40, 90]), split(b, [70, 200])
    order = [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2)]
    payloads = [(pa if f == "a" else pb)[i] for f, i in order]
    view = PacketView.from_payloads(payloads)
    seq = {"a": [1, 41, 91], "b": [500, 570, 700]}
    view = dataclasses.replace(
        view, seq=np.array([seq[f][i] for f, i in order], dtype=np.int64),
        sport=np.array([443 if f == "a" else 8443 for f, _ in order], dtype=np.int64))
    got = run(tls, view)
    assert got[4]["cert_subject"] == "CN=flow-a,O=Plant\\, Inc."
    assert got[5]["cert_subject"] == "CN=flow-b,O=Plant\\, Inc."
    assert all(got[r]["tls_hs"] is None for r in (0, 1, 2, 3))


@pytest.mark.parametrize("seed", range(6))
def test_any_segmentation_gives_the_same_messages(keys, seed):
    """A handshake stream cut anywhere, in any number of batches, reports the same messages
    (each on the segment that completes it)."""
    rng = random.Random(seed)
    stream = (frames.tls_server_hello(RND) + frames.tls_certificate([make_cert("seg", keys["rsa"])])
              + frames.tls_server_hello_done())
    cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 12)))
    parts = split(stream, cuts)
    seqs = list(np.cumsum([2**32 - 200] + [len(p) for p in parts[:-1]]) % 2**32)  # wraps
    state: dict = {}
    reported = []
    i = 0
    while i < len(parts):
        k = rng.randint(1, 3)
        got = run(tls, segments(parts[i : i + k], seqs=seqs[i : i + k]), state)
        reported += [(got[r]["tls_hs"], got[r]["cert_subject"]) for r in sorted(got)
                     if got[r]["tls_hs"] is not None]
        i += k
    assert [h for h, _ in reported] == [2, 11] or [h for h, _ in reported] == [2]
    assert [s for _, s in reported if s] == ["CN=seg,O=Plant\\, Inc."]
    assert not state["flows"]


def test_dns_tcp_continuation_segments_are_not_parsed():
    r = frames.dns_response(1, "big.example", [f"10.0.0.{i}" for i in range(1, 60)])
    msg = struct.pack("!H", len(r)) + r
    first, rest = msg[:300], msg[300:]
    got = run(dns, PacketView.from_payloads([first, rest], proto=6, sport=53))
    assert got[0]["dns_qname"] == "big.example"
    assert 1 not in got
