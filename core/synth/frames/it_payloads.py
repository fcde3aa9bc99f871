"""IT application payloads: TLS (and X.509 certificates), RDP, DNS, NBNS, DHCP, NTP, SMB2."""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Sequence
from functools import lru_cache

from plantwatch.core.synth.frames.ics_plc import tpkt
from plantwatch.core.synth.frames.wire import (
    Addr,
    _ip,
    _mac,
)

# --------------------------------------------------------------------------- TLS

TLS_PORT = 443
# A browser-like TLS 1.2 offer (ECDHE-ECDSA/RSA AES-GCM, CHACHA20, then CBC fallbacks).
TLS_CIPHERS_BROWSER = (0xC02B, 0xC02F, 0xCCA9, 0xCCA8, 0xC02C, 0xC030, 0xC013, 0xC014, 0x009C,
                       0x009D, 0x002F, 0x0035)
# A short offer typical of a scripted implant.
TLS_CIPHERS_TOOL = (0xC030, 0xC02F, 0x009F, 0x009E, 0xC028, 0xC027, 0x003D, 0x003C, 0x0035, 0x002F, 0x00FF)
TLS_GROUPS = (0x001D, 0x0017, 0x0018)  # x25519, secp256r1, secp384r1
TLS_SIGALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)


def _ext(ext_type: int, body: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(body)) + body


def tls_record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    """One TLS record (22 handshake, 20 change_cipher_spec, 23 application_data, 21 alert)."""
    return struct.pack("!BHH", content_type, version, len(body)) + body


def _handshake(hs_type: int, body: bytes) -> bytes:
    return struct.pack("!B", hs_type) + len(body).to_bytes(3, "big") + body


def tls_client_hello(random: bytes, *, sni: str | None = None,
                     ciphers: Sequence[int] = TLS_CIPHERS_BROWSER,
                     groups: Sequence[int] = TLS_GROUPS, point_formats: Sequence[int] = (0,),
                     sigalgs: Sequence[int] = TLS_SIGALGS, alpn: Sequence[str] = (),
                     session_id: bytes = b"", record: bool = True) -> bytes:
    """A TLS 1.2 ClientHello (handshake message, wrapped in a record unless record=False).
    Extension order: server_name, extended_master_secret, renegotiation_info, supported_groups,
    ec_point_formats, session_ticket, [alpn], signature_algorithms; JA3 follows from these."""
    exts = b""
    if sni is not None:
        name = sni.encode("ascii")
        exts += _ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
    exts += _ext(0x0017, b"")
    exts += _ext(0xFF01, b"\x00")
    exts += _ext(0x000A, struct.pack(f"!H{len(groups)}H", 2 * len(groups), *groups))
    exts += _ext(0x000B, bytes([len(point_formats), *point_formats]))
    exts += _ext(0x0023, b"")
    if alpn:
        protos = b"".join(bytes([len(p)]) + p.encode("ascii") for p in alpn)
        exts += _ext(0x0010, struct.pack("!H", len(protos)) + protos)
    exts += _ext(0x000D, struct.pack(f"!H{len(sigalgs)}H", 2 * len(sigalgs), *sigalgs))
    body = (struct.pack("!H", 0x0303) + random[:32].ljust(32, b"\x00")
            + bytes([len(session_id)]) + session_id
            + struct.pack(f"!H{len(ciphers)}H", 2 * len(ciphers), *ciphers)
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    hs = _handshake(1, body)
    return tls_record(22, hs, 0x0301) if record else hs


def tls_server_hello(random: bytes, cipher: int = 0xC02F, session_id: bytes = b"",
                     record: bool = True) -> bytes:
    exts = _ext(0xFF01, b"\x00") + _ext(0x000B, b"\x01\x00") + _ext(0x0017, b"")
    body = (struct.pack("!H", 0x0303) + random[:32].ljust(32, b"\x00") + bytes([len(session_id)])
            + session_id + struct.pack("!HB", cipher, 0) + struct.pack("!H", len(exts)) + exts)
    hs = _handshake(2, body)
    return tls_record(22, hs) if record else hs


def tls_certificate(ders: Sequence[bytes], record: bool = True) -> bytes:
    """Certificate handshake message with a chain of DER certificates (leaf first)."""
    chain = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    hs = _handshake(11, len(chain).to_bytes(3, "big") + chain)
    return tls_record(22, hs) if record else hs


def tls_server_hello_done(record: bool = True) -> bytes:
    hs = _handshake(14, b"")
    return tls_record(22, hs) if record else hs


def tls_server_flight(random: bytes, ders: Sequence[bytes], cipher: int = 0xC02F,
                      session_id: bytes = b"") -> bytes:
    """ServerHello, Certificate, ServerHelloDone in one handshake record (as many servers send)."""
    return tls_record(22, tls_server_hello(random, cipher, session_id, record=False)
                      + tls_certificate(ders, record=False) + tls_server_hello_done(record=False))


def tls_client_finish(key_share: bytes, finished: bytes) -> bytes:
    """ClientKeyExchange (ECDHE point), ChangeCipherSpec and the encrypted Finished."""
    cke = tls_record(22, _handshake(16, bytes([len(key_share)]) + key_share))
    return cke + tls_record(20, b"\x01") + tls_record(22, finished)


def tls_server_finish(finished: bytes) -> bytes:
    return tls_record(20, b"\x01") + tls_record(22, finished)


def tls_app_data(ciphertext: bytes, max_record: int = 16384) -> bytes:
    """Application data records (opaque bytes), split at the 16 KiB record limit."""
    return b"".join(tls_record(23, ciphertext[i : i + max_record])
                    for i in range(0, len(ciphertext), max_record))


@lru_cache(maxsize=256)
def make_certificate(subject_cn: str, *, seed: int = 1, issuer_cn: str | None = None,
                     issuer_seed: int | None = None, org: str | None = None,
                     not_before: _dt.datetime = _dt.datetime(2024, 1, 1, tzinfo=_dt.UTC),
                     days: int = 825, san: tuple[str, ...] = (), serial: int | None = None) -> bytes:
    """A DER X.509 certificate, byte-identical for identical arguments.

    The subject key is a P-256 key derived from `seed`; self-signed unless `issuer_cn` is given,
    in which case it is signed by the key derived from `issuer_seed` (a CA's). ECDSA signatures use
    RFC 6979 deterministic nonces.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def key(s: int) -> ec.EllipticCurvePrivateKey:
        return ec.derive_private_key(0x5EED0000 + s, ec.SECP256R1())

    def name(cn: str) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    subject_key = key(seed)
    if issuer_cn is None:
        issuer_name, signer = name(subject_cn), subject_key
    else:
        issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)])
        signer = key(seed if issuer_seed is None else issuer_seed)
    b = (x509.CertificateBuilder().subject_name(name(subject_cn)).issuer_name(issuer_name)
         .public_key(subject_key.public_key())
         .serial_number(serial if serial is not None else 0x1000 + seed)
         .not_valid_before(not_before).not_valid_after(not_before + _dt.timedelta(days=days)))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False)
    if issuer_cn is None:
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    cert = b.sign(signer, hashes.SHA256(), ecdsa_deterministic=True)
    return cert.public_bytes(serialization.Encoding.DER)


# --------------------------------------------------------------------------- RDP (X.224 on TPKT)

RDP_PORT = 3389
RDP_PROTOCOL_SSL = 1
RDP_PROTOCOL_HYBRID = 2


def rdp_connection_request(user: str | None, requested_protocols: int = RDP_PROTOCOL_SSL | RDP_PROTOCOL_HYBRID,
                           flags: int = 0) -> bytes:
    """TPKT + X.224 CR with 'Cookie: mstshash=<user>' and an RDP_NEG_REQ."""
    cookie = f"Cookie: mstshash={user}\r\n".encode("ascii") if user is not None else b""
    neg = struct.pack("<BBHI", 1, flags, 8, requested_protocols)
    body = struct.pack("!BHHB", 0xE0, 0, 0, 0) + cookie + neg
    return tpkt(bytes([len(body)]) + body)


def rdp_connection_confirm(selected_protocol: int = RDP_PROTOCOL_SSL, src_ref: int = 0x1234) -> bytes:
    """TPKT + X.224 CC with an RDP_NEG_RSP."""
    neg = struct.pack("<BBHI", 2, 0x1F, 8, selected_protocol)
    body = struct.pack("!BHHB", 0xD0, 0, src_ref, 0) + neg
    return tpkt(bytes([len(body)]) + body)


# --------------------------------------------------------------------------- DNS / NBNS / DHCP / NTP

DNS_PORT = 53


def dns_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        lb = label.encode("ascii")
        out += bytes([len(lb)]) + lb
    return out + b"\x00"


def dns_query(ident: int, name: str, qtype: int = 1) -> bytes:
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + dns_name(name) + struct.pack("!HH", qtype, 1)


def dns_response(ident: int, name: str, addresses: Sequence[Addr], ttl: int = 300,
                 rcode: int = 0) -> bytes:
    """A response to an A query: answers point to the question name (compression pointer 0xC00C);
    rcode 3 (NXDOMAIN) with no answers for a missing name."""
    q = dns_name(name) + struct.pack("!HH", 1, 1)
    ans = b"".join(struct.pack("!HHHIH", 0xC00C, 1, 1, ttl, 4) + _ip(a) for a in addresses)
    return struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, len(addresses), 0, 0) + q + ans


NBNS_PORT = 137


def nbns_encode(name: str, suffix: int = 0x00) -> bytes:
    raw = name.upper().encode("ascii")[:15].ljust(15, b" ") + bytes([suffix])
    enc = bytes(b for c in raw for b in (0x41 + (c >> 4), 0x41 + (c & 0x0F)))
    return b"\x20" + enc + b"\x00"


def nbns_query(ident: int, name: str, suffix: int = 0x00, broadcast: bool = True) -> bytes:
    flags = 0x0110 if broadcast else 0x0100
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 0) + nbns_encode(name, suffix) + struct.pack("!HH", 0x20, 1)


def nbns_response(ident: int, name: str, address: Addr, suffix: int = 0x00, ttl: int = 300000) -> bytes:
    """Positive name query response (unicast from the name's owner): one NB record."""
    return (struct.pack("!HHHHHH", ident, 0x8500, 0, 1, 0, 0) + nbns_encode(name, suffix)
            + struct.pack("!HHIHH", 0x20, 1, ttl, 6, 0) + _ip(address))


DHCP_DISCOVER, DHCP_OFFER, DHCP_REQUEST, DHCP_ACK = 1, 2, 3, 5


def dhcp(msg_type: int, xid: int, client_mac: Addr, *, hostname: str | None = None,
         requested_ip: Addr | None = None, server_id: Addr | None = None, your_ip: Addr = b"\0\0\0\0",
         client_ip: Addr = b"\0\0\0\0", subnet_mask: Addr | None = None, router: Addr | None = None,
         dns: Addr | None = None, lease: int | None = None, domain: str | None = None,
         vendor_class: str | None = None, parameters: bytes | None = None) -> bytes:
    """A BOOTP/DHCP message: op follows the message type (OFFER/ACK are replies); `vendor_class`
    is option 60, `parameters` the option codes of the parameter request list (option 55)."""
    mac = _mac(client_mac)
    op = 2 if msg_type in (DHCP_OFFER, DHCP_ACK, 6) else 1
    hdr = (struct.pack("!BBBBIHH", op, 1, 6, 0, xid, 0, 0) + _ip(client_ip) + _ip(your_ip)
           + (_ip(server_id) if op == 2 and server_id is not None else bytes(4)) + bytes(4)
           + mac + bytes(10) + bytes(64 + 128) + b"\x63\x82\x53\x63")
    opts = bytes([53, 1, msg_type])
    if op == 1:
        opts += bytes([61, 7, 1]) + mac
    if requested_ip is not None:
        opts += bytes([50, 4]) + _ip(requested_ip)
    if server_id is not None:
        opts += bytes([54, 4]) + _ip(server_id)
    if lease is not None:
        opts += bytes([51, 4]) + struct.pack("!I", lease)
    if subnet_mask is not None:
        opts += bytes([1, 4]) + _ip(subnet_mask)
    if router is not None:
        opts += bytes([3, 4]) + _ip(router)
    if dns is not None:
        opts += bytes([6, 4]) + _ip(dns)
    if domain is not None:
        d = domain.encode("ascii")
        opts += bytes([15, len(d)]) + d
    if hostname is not None:
        h = hostname.encode("ascii")
        opts += bytes([12, len(h)]) + h
    if vendor_class is not None:
        v = vendor_class.encode("ascii")
        opts += bytes([60, len(v)]) + v
    if op == 1 or parameters is not None:
        asked = bytes([1, 3, 6, 15, 31, 33]) if parameters is None else parameters
        opts += bytes([55, len(asked)]) + asked
    opts += b"\xff"
    msg = hdr + opts
    return msg + bytes(max(0, 300 - len(msg)))


NTP_PORT = 123
_NTP_EPOCH = 2208988800


def ntp_timestamp(ts_ns: int) -> bytes:
    sec, frac = divmod(ts_ns, 1_000_000_000)
    return struct.pack("!II", (sec + _NTP_EPOCH) & 0xFFFFFFFF, (frac << 32) // 1_000_000_000)


def ntp(ts_ns: int, *, server: bool = False, origin_ns: int = 0, stratum: int = 2,
        ref_id: bytes = b"\xc0\xa8\x01\x01") -> bytes:
    """NTPv4 client (mode 3) request or server (mode 4) reply stamped at packet time."""
    if not server:
        return struct.pack("!BBbb", 0x23, 0, 6, -20) + bytes(36) + ntp_timestamp(ts_ns)
    t = ntp_timestamp(ts_ns)
    return (struct.pack("!BBbbII", 0x24, stratum, 6, -23, 0x100, 0x200) + ref_id[:4]
            + ntp_timestamp(ts_ns - 60_000_000_000) + ntp_timestamp(origin_ns) + t + t)


# --------------------------------------------------------------------------- SMB2 (over NetBIOS session)

SMB_PORT = 445


def _nbss(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


def _smb2_header(command: int, message_id: int, *, response: bool = False, session_id: int = 0,
                 tree_id: int = 0, credits: int = 1) -> bytes:
    return (b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ", 64, 0, 0, command, credits,
                                     1 if response else 0, 0, message_id, 0xFEFF, tree_id, session_id)
            + bytes(16))


def smb2_negotiate(message_id: int = 0, client_guid: bytes = bytes(16),
                   dialects: Sequence[int] = (0x0202, 0x0210, 0x0300, 0x0302)) -> bytes:
    """SMB2 NEGOTIATE request (no negotiate contexts) in a NetBIOS session message."""
    body = struct.pack("<HHHHI", 36, len(dialects), 1, 0, 0x7F) + client_guid[:16].ljust(16, b"\0") \
        + bytes(8) + struct.pack(f"<{len(dialects)}H", *dialects)
    return _nbss(_smb2_header(0, message_id) + body)


def smb2_negotiate_resp(message_id: int = 0, server_guid: bytes = bytes(16), dialect: int = 0x0302,
                        system_time_ns: int = 0) -> bytes:
    """SMB2 NEGOTIATE response with an empty security buffer."""
    ft = system_time_ns // 100 + 116444736000000000
    body = (struct.pack("<HHHH", 65, 1, dialect, 0) + server_guid[:16].ljust(16, b"\0")
            + struct.pack("<IIIIQQHHI", 0x2F, 8388608, 8388608, 8388608, ft, 0, 128, 0, 0))
    return _nbss(_smb2_header(0, message_id, response=True) + body)


def smb2_read(message_id: int, session_id: int, tree_id: int, file_id: bytes, offset: int,
              length: int) -> bytes:
    """SMB2 READ request (signing, not encryption: the Windows default for a file share)."""
    hdr = _smb2_header(8, message_id, session_id=session_id, tree_id=tree_id)
    body = struct.pack("<HBBIQ", 49, 0x50, 0, length, offset) + file_id[:16].ljust(16, b"\0") \
        + struct.pack("<IIIHH", 1, 0, 0, 0, 0) + b"\x00"
    return _nbss(hdr + body)


def smb2_read_resp(message_id: int, session_id: int, tree_id: int, data: bytes) -> bytes:
    hdr = _smb2_header(8, message_id, response=True, session_id=session_id, tree_id=tree_id)
    body = struct.pack("<HBBIII", 17, 0x50, 0, len(data), 0, 0) + data
    return _nbss(hdr + body)


def smb2_encrypted(session_id: int, nonce: bytes, ciphertext: bytes) -> bytes:
    """An SMB 3.x TRANSFORM_HEADER message (encrypted traffic after session setup).

    tshark 4.0 tries to decrypt it and, for about one ciphertext in 65,536, takes the garbage for
    an SMB2 header and reports a malformed packet: for bulk traffic prefer smb2_read/_resp."""
    hdr = (b"\xfdSMB" + bytes(16) + nonce[:16].ljust(16, b"\0")
           + struct.pack("<IHHQ", len(ciphertext), 0, 1, session_id))
    return _nbss(hdr + ciphertext)
