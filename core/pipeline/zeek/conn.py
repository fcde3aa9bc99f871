"""conn.log and open_conn.log rows to sessions (plantwatch.core.flows.sessions.SESSIONS).

Zeek's originator is the client and its responder the server, except where Zeek saw no
handshake (history without s/S/h/H): there the packet path's rule decides, so both paths name
the same side: the side on an ICS port is the server, else the side on a port below 1024, else
the side that sent first (Zeek's originator, unless its history starts with ^: Zeek flipped it).

State follows the packet path's rules, read from Zeek's history letters (upper case: sent by the
originator; S SYN, H SYN-ACK, F FIN, R RST): refused (the server reset a SYN it never accepted),
closed (FIN both ways), reset (RST after a handshake, or mid-stream after both sides spoke),
established (handshake or mid-stream), else unanswered (a closed conn.log record) or attempted
(open_conn.log: still waiting). UDP and others: answered when the responder sent packets,
one-way towards group addresses and the one-way ports, else unanswered. What a Zeek record
cannot tell: ICMP unreachable answering a UDP probe (Zeek logs it as its own ICMP record: the
UDP session reads unanswered, never unreachable) and a COTP DR refusing a CR.

Volumes: packets are Zeek's; bytes are IP bytes (orig_ip_bytes), not wire bytes (the link header
is not logged); payload bytes are Zeek's orig_bytes/resp_bytes (from sequence numbers on TCP).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode.addr import is_group, text_to_ip, text_to_mac
from plantwatch.core.decode.schema import (
    APP_BACNET,
    APP_DHCP,
    APP_DNP3,
    APP_DNS,
    APP_ENIP,
    APP_HTTP,
    APP_IEC104,
    APP_MODBUS,
    APP_NBNS,
    APP_NTP,
    APP_OPCUA,
    APP_RDP,
    APP_S7,
    APP_S7PLUS,
    APP_SMB,
    APP_TLS,
)
from plantwatch.core.flows.sessions import ICS_PORTS, ONEWAY_UDP_PORTS
from plantwatch.core.pipeline.zeek.reader import ts_ns

# Zeek service names (analyzer tags, lower case) -> APP_*; the most specific one wins.
SERVICE_APP: dict[str, int] = {
    "modbus": APP_MODBUS, "s7comm": APP_S7, "s7comm-plus": APP_S7PLUS, "s7comm_plus": APP_S7PLUS,
    "dnp3": APP_DNP3, "dnp3_tcp": APP_DNP3, "dnp3_udp": APP_DNP3, "enip": APP_ENIP, "cip": APP_ENIP,
    "enip_tcp": APP_ENIP, "enip_udp": APP_ENIP, "iec104": APP_IEC104, "iec60870_5_104": APP_IEC104,
    "spicy_iec104": APP_IEC104, "bacnet": APP_BACNET, "opcua_binary": APP_OPCUA, "opcua": APP_OPCUA,
    "ssl": APP_TLS, "tls": APP_TLS, "rdp": APP_RDP, "rdpeudp": APP_RDP, "dns": APP_DNS,
    "dhcp": APP_DHCP, "nbns": APP_NBNS, "http": APP_HTTP, "smb": APP_SMB, "ntp": APP_NTP,
}
_PROTO = {"tcp": 6, "udp": 17, "icmp": 1}


def service_app(service: str | None) -> int:
    if not service:
        return 0
    apps = [SERVICE_APP.get(s.strip().lower(), 0) for s in service.split(",")]
    apps = [a for a in apps if a]
    # an ICS app (1..19) over the transport it rides on (cotp,s7comm -> s7comm)
    return min(apps, key=lambda a: (a >= 20, -a if a < 20 else a)) if apps else 0


def addr_pairs(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) uint64 arrays of address texts (each distinct text parsed once)."""
    uniq = texts.unique().drop_nulls().to_list()
    table: dict[str, tuple[int, int]] = {}
    for t in uniq:
        try:
            table[t] = text_to_ip(t)
        except ValueError:
            table[t] = (0, 0)
    hi = texts.replace_strict({k: v[0] for k, v in table.items()}, default=0, return_dtype=pl.UInt64)
    lo = texts.replace_strict({k: v[1] for k, v in table.items()}, default=0, return_dtype=pl.UInt64)
    return hi.to_numpy().astype(np.uint64), lo.to_numpy().astype(np.uint64)


def mac_values(texts: pl.Series) -> pl.Series:
    out = []
    for t in texts.to_list():
        try:
            out.append(text_to_mac(t) if t else None)
        except ValueError:
            out.append(None)
    return pl.Series(out, dtype=pl.UInt64)


def _col(f: pl.DataFrame, name: str) -> pl.Series:
    return f[name] if name in f.columns else pl.Series(name, [None] * f.height, pl.String)


def _count(f: pl.DataFrame, name: str) -> np.ndarray:
    return _col(f, name).cast(pl.Int64, strict=False).fill_null(0).to_numpy()


def conn_records(f: pl.DataFrame, file_id: int | np.ndarray, *, still_open: bool = False) -> pl.DataFrame:
    """The session-level facts of conn.log rows (one per uid): addresses, ports, state, volumes.
    Returns a frame keyed by `uid` with the SESSIONS columns a conn record can fill, plus
    `swapped` (client is Zeek's responder) and `ref` (file_id << 32 | line)."""
    n = f.height
    oh, ol = addr_pairs(_col(f, "id.orig_h"))
    rh, rl = addr_pairs(_col(f, "id.resp_h"))
    op, rp = _count(f, "id.orig_p"), _count(f, "id.resp_p")
    proto_txt = _col(f, "proto").to_list()
    v6 = (oh != 0) | ((ol >> np.uint64(32)) != np.uint64(0xFFFF))
    ipp = _col(f, "ip_proto").cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    proto = np.array([_PROTO.get(p or "", 0) for p in proto_txt], dtype=np.int64)
    proto = np.where((proto == 1) & v6, 58, proto)
    proto = np.where(proto == 0, ipp, proto)
    hist = _col(f, "history").fill_null("").to_list()
    has = {c: np.array([c in h for h in hist], dtype=bool) for c in "SsHhFfRr"}
    syn, synack = has["S"] | has["s"], has["H"] | has["h"]
    midstream = ~(syn | synack)
    # who is the client: Zeek's originator, unless no handshake was seen and the port rule says otherwise
    ics_o, ics_r = np.isin(op, list(ICS_PORTS)), np.isin(rp, list(ICS_PORTS))
    wk_o, wk_r = (op > 0) & (op < 1024), (rp > 0) & (rp < 1024)
    decided = syn | synack
    flipped = np.array(["^" in h for h in hist], dtype=bool)  # Zeek swapped the first sender
    by_port = np.select([ics_o & ~ics_r, ics_r & ~ics_o, wk_o & ~wk_r, wk_r & ~wk_o],
                        [True, False, True, False], default=flipped)
    swapped = np.where(decided, ~has["S"] & (has["s"] | has["H"]), by_port)
    swapped &= proto != 1
    swapped &= proto != 58
    op_k, rp_k = _count(f, "orig_pkts"), _count(f, "resp_pkts")
    ob, rb = _count(f, "orig_ip_bytes"), _count(f, "resp_ip_bytes")
    oy, ry = _count(f, "orig_bytes"), _count(f, "resp_bytes")
    handshake = np.where(swapped, has["H"], has["h"])
    c_syn = np.where(swapped, has["s"], has["S"])
    rst_c = np.where(swapped, has["r"], has["R"]).astype(np.int32)
    rst_s = np.where(swapped, has["R"], has["r"]).astype(np.int32)
    fin_both = has["F"] & has["f"]
    p_s = np.where(swapped, op_k, rp_k)
    no_answer = p_s == 0
    tcp_state = np.select(
        [fin_both, ((rst_c + rst_s) > 0) & (handshake | (midstream & ~no_answer)),
         (rst_s > 0) & ~handshake, handshake | midstream],
        ["closed", "reset", "refused", "established"],
        default="attempted" if still_open else "unanswered")
    sw = lambda a, b: (np.where(swapped, b, a), np.where(swapped, a, b))  # noqa: E731
    c_hi, s_hi = sw(oh, rh)
    c_lo, s_lo = sw(ol, rl)
    c_pt, s_pt = sw(op, rp)
    grp = is_group(s_hi, s_lo)
    oneway = grp | ((proto == 17) & (np.isin(c_pt, ONEWAY_UDP_PORTS) | np.isin(s_pt, ONEWAY_UDP_PORTS)))
    other_state = np.select([~no_answer, oneway], ["answered", "one-way"], default="unanswered")
    state = np.where(proto == 6, tcp_state, other_state)
    ports_ok = (proto == 6) | (proto == 17)
    ts = f.select(ts_ns())["ts"] if "ts" in f.columns else pl.Series([None] * n, dtype=pl.Int64)
    dur = _col(f, "duration").cast(pl.Float64, strict=False).fill_null(0.0)
    last = ts + (dur * 1e9).round().cast(pl.Int64)
    line = f["_line"].to_numpy()
    ref = (np.asarray(file_id, dtype=np.int64) << 32) | line
    p_c, p_s = sw(op_k, rp_k)
    b_c, b_s = sw(ob, rb)
    y_c, y_s = sw(oy, ry)
    orig_mac, resp_mac = mac_values(_col(f, "orig_l2_addr")), mac_values(_col(f, "resp_l2_addr"))
    vlan = _col(f, "vlan").cast(pl.Int32, strict=False)
    evr = lambda m: pl.Series(np.where(m, ref, 0)).replace(0, None)  # noqa: E731
    return pl.DataFrame({
        "uid": f["_key"] if "_key" in f.columns else f["uid"], "proto": pl.Series(proto, dtype=pl.UInt8), "state": pl.Series(state, dtype=pl.String),
        "app": pl.Series([service_app(s) for s in _col(f, "service").to_list()], dtype=pl.UInt8),
        "client_hi": pl.Series(c_hi, dtype=pl.UInt64), "client_lo": pl.Series(c_lo, dtype=pl.UInt64),
        "client_port": pl.Series(np.where(ports_ok, c_pt, 0), dtype=pl.Int32),
        "server_hi": pl.Series(s_hi, dtype=pl.UInt64), "server_lo": pl.Series(s_lo, dtype=pl.UInt64),
        "server_port": pl.Series(np.where(ports_ok, s_pt, 0), dtype=pl.Int32),
        "client_mac": pl.select(pl.when(pl.Series(swapped)).then(resp_mac).otherwise(orig_mac)).to_series(),
        "server_mac": pl.select(pl.when(pl.Series(swapped)).then(orig_mac).otherwise(resp_mac)).to_series(),
        "vlan": vlan, "first_ts": ts, "last_ts": last,
        "pkts_c2s": p_c, "pkts_s2c": p_s, "bytes_c2s": b_c, "bytes_s2c": b_s,
        "payload_c2s": y_c, "payload_s2c": y_s,
        "ref": ref, "syn_count": c_syn.astype(np.int32), "handshake": handshake, "midstream": midstream & (proto == 6),
        "rst_client": rst_c, "rst_server": rst_s, "to_group": grp, "swapped": swapped,
        "ev_syn": evr(c_syn), "ev_synack": evr(handshake), "ev_rst": evr((rst_c + rst_s) > 0),
        "ev_fin": evr(has["F"] | has["f"]),
    }).with_columns(pl.col(c).cast(pl.Int64) for c in ("ev_syn", "ev_synack", "ev_rst", "ev_fin"))
