"""Application payloads of identity answers the earlier builders lack: an OPC UA GetEndpoints
response, an HTTP/1.x response head, and a DNP3 response with device attributes (group 0)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

OPCUA_PORT = 4840


def _ua_string(s: str | bytes | None) -> bytes:
    if s is None:
        return struct.pack("<i", -1)
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<i", len(b)) + b


def opcua_endpoint(url: str, application_uri: str, product_uri: str | None, application_name: str,
                   certificate: bytes | None, security_mode: int = 1,
                   policy: str = "http://opcfoundation.org/UA/SecurityPolicy#None") -> bytes:
    """One EndpointDescription (binary encoding) with an anonymous user token policy."""
    return b"".join([
        _ua_string(url), _ua_string(application_uri), _ua_string(product_uri),
        b"\x02" + _ua_string(application_name),          # LocalizedText: text only
        struct.pack("<i", 0), _ua_string(None), _ua_string(None), struct.pack("<i", -1),
        _ua_string(certificate), struct.pack("<i", security_mode), _ua_string(policy),
        struct.pack("<i", 1), _ua_string("anonymous"), struct.pack("<i", 0),
        _ua_string(None), _ua_string(None), _ua_string(None),
        _ua_string("http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary"), b"\x00",
    ])


def opcua_get_endpoints_response(endpoints: Sequence[bytes], channel: int = 1, token: int = 1,
                                 seq: int = 2, request: int = 2, handle: int = 1) -> bytes:
    """A final MSG chunk holding a GetEndpointsResponse (node id 431), no security."""
    body = (struct.pack("<IIII", channel, token, seq, request) + b"\x01\x00" + struct.pack("<H", 431)
            + struct.pack("<qIIB", 0, handle, 0, 0) + struct.pack("<i", -1) + b"\x00\x00\x00"
            + struct.pack("<i", len(endpoints)) + b"".join(endpoints))
    return b"MSGF" + struct.pack("<I", 8 + len(body)) + body


def _ua_message(service: int, body: bytes, channel: int, token: int, seq: int, request: int, handle: int) -> bytes:
    head = (struct.pack("<IIII", channel, token, seq, request) + b"\x01\x00" + struct.pack("<H", service)
            + struct.pack("<qIIB", 0, handle, 0, 0) + struct.pack("<i", -1) + b"\x00\x00\x00")
    return b"MSGF" + struct.pack("<I", 8 + len(head) + len(body)) + head + body


def opcua_read_server_status_response(product_uri: str, manufacturer: str, product: str, software: str,
                                      build: str, channel: int = 1, token: int = 1, seq: int = 3,
                                      request: int = 3, handle: int = 2) -> bytes:
    """A ReadResponse (634) with two results: an Int32 (the ServerStatus State child, say) and the
    ServerStatus variable, a ServerStatusDataType ExtensionObject holding the BuildInfo."""
    build_info = b"".join(_ua_string(x) for x in (product_uri, manufacturer, product, software, build))
    build_info += struct.pack("<q", 0)
    status = struct.pack("<qqi", 0, 0, 0) + build_info + struct.pack("<I", 0) + b"\x00"
    ext = b"\x01\x00" + struct.pack("<H", 864) + b"\x01" + _ua_string(status)
    results = struct.pack("<i", 2) + b"\x01\x06" + struct.pack("<i", 0) + b"\x01\x16" + ext
    return _ua_message(634, results + struct.pack("<i", -1), channel, token, seq, request, handle)


def http_response(status: int, reason: str, headers: Sequence[tuple[str, str | bytes]], body: bytes = b"") -> bytes:
    """An HTTP/1.1 response head (with Content-Length) and its body."""
    lines = [f"HTTP/1.1 {status} {reason}".encode("latin-1")]
    for k, v in headers:
        lines.append(k.encode("latin-1") + b": " + (v.encode("latin-1") if isinstance(v, str) else v))
    lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def dnp3_response_device_attributes(seq: int, attributes: Sequence[tuple[int, str]], iin: int = 0) -> bytes:
    """Application RESPONSE (129) with group 0 device attributes: each (variation, text) as its
    own object header (qualifier 0x00, index 0..0) followed by a visible-string attribute
    (data type 1, length, bytes)."""
    objs = b""
    for var, text in attributes:
        raw = text.encode("latin-1")
        objs += struct.pack("BBBBB", 0, var, 0x00, 0, 0) + struct.pack("BB", 1, len(raw)) + raw
    return bytes([0xC0 | (seq & 0x0F), 129]) + struct.pack("<H", iin) + objs
