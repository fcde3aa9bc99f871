"""The session tables' schemas and vocabulary: states, SESSIONS, SESSION_OPS, ENDPOINTS, and
packet references (`ref = file_id << 32 | frame`)."""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.capture.refs import PacketRef, pack_refs
from plantwatch.core.decode.ics import ICS_PORTS as ICS_PORTS  # the one place: core/decode/ics.py

STATE_ATTEMPTED = "attempted"
STATE_ESTABLISHED = "established"
STATE_REFUSED = "refused"
STATE_UNANSWERED = "unanswered"
STATE_RESET = "reset"
STATE_CLOSED = "closed"
STATE_ANSWERED = "answered"
STATE_UNREACHABLE = "unreachable"
STATE_ONEWAY = "one-way"  # UDP/ICMP sent where no answer is expected (see ONEWAY_UDP_PORTS)
FAILED_STATES = frozenset({STATE_REFUSED, STATE_UNANSWERED, STATE_UNREACHABLE})

OP_STRUCT = pl.Struct({
    "app": pl.UInt8(), "code": pl.Int32(), "cls": pl.UInt8(), "name": pl.String(),
    "from_client": pl.Boolean(),   # sent by the session's client (False: by its server)
    "requests": pl.Boolean(),      # direction == DIR_REQUEST (else responses / other)
    "count": pl.Int64(), "exceptions": pl.Int64(), "first_ref": pl.Int64(),
})

# One row per session.
SESSIONS: dict[str, pl.DataType] = {
    "session_id": pl.Int64(),      # 63-bit deterministic id
    "proto": pl.UInt8(),           # IP protocol (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...)
    "state": pl.String(),          # attempted|established|refused|unanswered|reset|closed (TCP); answered|unanswered|unreachable
    "app": pl.UInt8(),             # most common non-zero APP_* of its packets (0 none)
    "client_hi": pl.UInt64(), "client_lo": pl.UInt64(), "client_port": pl.Int32(),
    "server_hi": pl.UInt64(), "server_lo": pl.UInt64(), "server_port": pl.Int32(),
    "client_mac": pl.UInt64(), "server_mac": pl.UInt64(),  # eth_src of their packets (null: none seen)
    "vlan": pl.Int32(),            # VLAN of the first packet
    "first_ts": pl.Int64(), "last_ts": pl.Int64(),          # ns, packet time
    "pkts_c2s": pl.Int64(), "pkts_s2c": pl.Int64(),
    "bytes_c2s": pl.Int64(), "bytes_s2c": pl.Int64(),       # wire length
    "payload_c2s": pl.Int64(), "payload_s2c": pl.Int64(),   # L4 payload bytes
    "first_file": pl.Int32(), "first_frame": pl.Int64(),
    "last_file": pl.Int32(), "last_frame": pl.Int64(),
    "syn_count": pl.Int32(),       # pure SYNs from the client (retries included)
    "handshake": pl.Boolean(),     # the server answered with SYN/ACK
    "midstream": pl.Boolean(),     # TCP seen without its SYN / SYN-ACK
    "rst_client": pl.Int32(), "rst_server": pl.Int32(),
    "icmp_errors": pl.Int32(),     # ICMP errors quoting this flow
    "to_group": pl.Boolean(),      # the server is a multicast/broadcast address
    "ev_syn": pl.Int64(), "ev_synack": pl.Int64(), "ev_rst": pl.Int64(), "ev_fin": pl.Int64(),
    "ev_unreach": pl.Int64(), "ev_dr": pl.Int64(), "ev_op": pl.Int64(), "ev_tls": pl.Int64(),
    "ev_rdp": pl.Int64(),          # packet refs (file_id << 32 | frame) of the first of each kind
    "tls_sni": pl.String(),        # first SNI of a ClientHello
    "tls_no_sni": pl.Boolean(),    # a ClientHello without SNI was seen
    "tls_ja3_hash": pl.String(), "tls_version": pl.Int32(),
    "cert_subject": pl.String(), "cert_issuer": pl.String(), "cert_self_signed": pl.Boolean(),
    "rdp_cookie": pl.String(),
    "n_ops": pl.Int64(),           # ICS operations seen (all directions)
    "ops": pl.List(OP_STRUCT),     # per (app, code, cls, name, from_client, requests)
}

# The tidy view of `ops` (session_ops()): one row per session and operation kind.
SESSION_OPS: dict[str, pl.DataType] = {
    "session_id": pl.Int64(),
    "client_hi": pl.UInt64(), "client_lo": pl.UInt64(),
    "server_hi": pl.UInt64(), "server_lo": pl.UInt64(), "server_port": pl.Int32(),
    "src_hi": pl.UInt64(), "src_lo": pl.UInt64(), "dst_hi": pl.UInt64(), "dst_lo": pl.UInt64(),
    "app": pl.UInt8(), "code": pl.Int32(), "cls": pl.UInt8(), "name": pl.String(),
    "from_client": pl.Boolean(), "requests": pl.Boolean(),
    "count": pl.Int64(), "exceptions": pl.Int64(), "first_file": pl.Int32(), "first_frame": pl.Int64(),
}


_EMPTY_SESSIONS = pl.DataFrame(schema=SESSIONS)


def make_ref(file_id: np.ndarray | int, frame: np.ndarray | int) -> np.ndarray | int:
    return pack_refs(file_id, frame)


def ref_file(ref: int) -> int:
    return PacketRef.unpack(ref).capture_id


def ref_frame(ref: int) -> int:
    return PacketRef.unpack(ref).frame


def empty_sessions() -> pl.DataFrame:
    return _EMPTY_SESSIONS.clear()


# Per batch, what each side of each segment sent and received (SessionTracker.last_endpoints):
# the device inventory's packet counters come from here instead of from every packet.
ENDPOINTS: dict[str, pl.DataType] = {
    "hi": pl.UInt64(), "lo": pl.UInt64(), "mac": pl.UInt64(),  # mac 0: none seen
    "pkts_sent": pl.Int64(), "bytes_sent": pl.Int64(), "pkts_recv": pl.Int64(), "bytes_recv": pl.Int64(),
    "first_ts": pl.Int64(), "last_ts": pl.Int64(), "vlan": pl.Int32(),
}


_STATE_MAP = dict(enumerate([STATE_ATTEMPTED, STATE_ESTABLISHED, STATE_REFUSED, STATE_UNANSWERED,
                             STATE_RESET, STATE_CLOSED, STATE_ANSWERED, STATE_UNREACHABLE,
                             STATE_ONEWAY]))
(_ST_ATTEMPTED, _ST_ESTABLISHED, _ST_REFUSED, _ST_UNANSWERED, _ST_RESET, _ST_CLOSED, _ST_ANSWERED,
 _ST_UNREACHABLE, _ST_ONEWAY) = range(9)
# UDP services that answer a broadcast with a unicast datagram of a flow of its own (DHCP, NetBIOS,
# mDNS, LLMNR, SSDP, WS-Discovery) or that never answer (syslog, SNMP traps, NetFlow/IPFIX): a
# datagram on these ports with no answer is normal, not a failed connection. So is anything sent
# to a multicast or broadcast address.
ONEWAY_UDP_PORTS = np.array([67, 68, 137, 138, 162, 514, 1900, 2055, 3702, 4739, 5353, 5355], dtype=np.int64)
