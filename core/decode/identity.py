"""Device identity from the wire: a sparse record stream beside PACKETS and OPS.

One record is one attribute a device stated about itself (model, firmware, serial...) in one
response PDU: the responder's address, an optional component (a module behind the responder, such
as a CIP backplane slot; "" is the responder itself), the attribute, its value, the protocol and
the frame. Only the response PDUs the ICS decoders already located are parsed (identity_*.py, one
module per protocol), so the cost grows with identity answers, not with traffic.

Attribute names are shared across protocols so the inventory can merge them (ATTRIBUTES below);
protocol-specific ones keep a prefix-free name that says what they are.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode.view import PacketView

IDENTITY: dict[str, pl.DataType] = {
    "file_id": pl.Int32(), "frame": pl.Int64(), "ts": pl.Int64(),
    "hi": pl.UInt64(), "lo": pl.UInt64(),   # the device that stated it (the response's source)
    "component": pl.String(),               # "" the device itself; else e.g. "backplane slot 0"
    "attribute": pl.String(),               # one of ATTRIBUTES
    "value": pl.String(),
    "source": pl.String(),                  # s7comm | modbus | enip | bacnet | profinet | dhcp | tls | opcua | http | dnp3
}

# The attributes identity decoders emit, and what each means.
ATTRIBUTES: dict[str, str] = {
    "vendor": "manufacturer name (stated, or looked up from a vendor id)",
    "vendor_id": "numeric vendor id (ODVA for CIP, ASHRAE for BACnet)",
    "product": "product name",
    "model": "model name or order number (S7 MLFB)",
    "product_code": "vendor's product code",
    "device_type": "device profile / type",
    "firmware": "firmware or revision",
    "software": "application software version",
    "serial": "serial number",
    "name": "configured station or system name",
    "module": "module or CPU type name",
    "module_name": "configured module name",
    "plant_tag": "plant designation",
    "copyright": "copyright string",
    "memory_card_serial": "serial number of the memory card",
    "device_instance": "BACnet device instance",
    "device_id": "PROFINET device id (assigned by the vendor)",
    "vendor_url": "vendor URL",
    "user_app": "user application name",
    "dhcp_vendor_class": "DHCP vendor class identifier (option 60)",
    "tls_certificate": "subject of the TLS certificate it sent (RFC 4514)",
    "tls_certificate_issuer": "issuer of that certificate",
    "dhcp_parameters": "DHCP parameter request list (option 55): option codes, comma separated",
    "application_uri": "OPC UA application URI (unique per application instance)",
    "product_uri": "OPC UA product URI (names the product)",
    "application_name": "OPC UA application name",
    "opcua_certificate": "subject of the OPC UA application instance certificate (RFC 4514)",
    "http_server": "HTTP `Server` header of its web server's responses",
    "hardware": "hardware version",
    "location": "user-assigned location",
    "user_id": "user-assigned id code or number",
    "build": "build number of its software",
}

# Attributes whose change on one device is a finding (ics.identity_changed).
TRACKED = ("firmware", "model", "serial", "module", "module_name", "name", "product", "vendor", "software",
           "application_uri", "product_uri")


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=IDENTITY)


def clean(raw: bytes) -> str:
    """A fixed-width or counted wire string as text: NUL padding and blanks trimmed."""
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def records_frame(view: PacketView, rows: list[int], recs: list[tuple],
                  file_id: np.ndarray, frame: np.ndarray, ts: np.ndarray) -> pl.DataFrame:
    """IDENTITY rows from (component, attribute, value, source[, hi, lo]) tuples of batch `rows`:
    the device is the packet's source address unless the record names one (hi, lo); empty
    values are dropped."""
    keep = [(r, c) for r, c in zip(rows, recs, strict=True) if c[2] != ""]
    if not keep:
        return empty()
    idx = np.array([r for r, _ in keep], dtype=np.int64)
    hi = np.array([c[4] if len(c) > 4 else view.src_hi[r] for r, c in keep], dtype=np.uint64)
    lo = np.array([c[5] if len(c) > 4 else view.src_lo[r] for r, c in keep], dtype=np.uint64)
    return pl.DataFrame({
        "file_id": file_id[idx].astype(np.int32), "frame": frame[idx].astype(np.int64),
        "ts": ts[idx].astype(np.int64), "hi": hi, "lo": lo,
        "component": [c[0] for _, c in keep], "attribute": [c[1] for _, c in keep],
        "value": [c[2] for _, c in keep], "source": [c[3] for _, c in keep],
    }, schema=IDENTITY)


def flow_key(view: PacketView, r: int, reverse: bool = False) -> tuple[int, ...]:
    """The 5-tuple of row `r` (reversed: as the other direction would carry it)."""
    a = (int(view.src_hi[r]), int(view.src_lo[r]), int(view.sport[r]))
    b = (int(view.dst_hi[r]), int(view.dst_lo[r]), int(view.dport[r]))
    return (*b, *a) if reverse else (*a, *b)
