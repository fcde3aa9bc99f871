"""Packets to connections: sessions with state, volumes, ICS operations, TLS and RDP facts.

`SessionTracker.update(packets, ops)` takes one decoded batch (schema.PACKETS / schema.OPS) and
returns the sessions that ended in it (by packet time); `flush()` returns the rest at the end of
input; `open_sessions()` is a live view. Everything is vectorised per batch: the packets are
sorted by a canonical flow key, cut into per-session segments (a segment never spans sessions),
aggregated with numpy reduceat, and the segment aggregates are merged into the open-session
table (numpy columns, one row per flow, found by a sorted key index). Operations, app counts and
TLS/RDP strings live in small side tables keyed by session id. No per-packet Python.

Session boundaries within one flow (same proto, addresses and ports), decided on packet time:
- a pure SYN whose sequence number differs from the session's SYN (a new connection on a reused
  port; SYN retries keep their ISN and stay in one session), or a SYN after mid-stream traffic;
- a gap longer than: `tcp_linger_s` after the session ended (RST, FIN both ways, COTP DR, ICMP
  unreachable), `tcp_unanswered_s` after an unanswered SYN, else the idle timeout of the proto.
At the end of each batch "now" is the batch's largest ts, and open sessions that passed the same
timeouts end. ICMP errors that quote a flow (q_* columns) are counted in that flow's session
(as `icmp_errors`, not in its packets/bytes), so an ICMP port unreachable answers a UDP probe.

Client and server: the sender of the first pure SYN (TCP); else the receiver of a SYN/ACK; else
the side on an ICS port is the server; else the side on a port below 1024; else the side that
sent first. State (TCP): refused (RST or ICMP unreachable answering a SYN with no SYN/ACK, or a
COTP DR answering a CR), reset (RST after a handshake or mid-stream traffic), closed (FIN both
ways), established (handshake seen, or mid-stream), attempted (SYN, no answer yet), unanswered
(no answer within tcp_unanswered_s, or ended without one). Other protocols: answered (the
server sent something), unreachable (only an ICMP unreachable came back), unanswered.

Packet references: evidence columns (`ev_*`) hold `ref = file_id << 32 | frame`; see
`ref_file`, `ref_frame`. Session ids are 63-bit hashes of proto, both endpoints and ports
(canonical order) and the first packet's ts, so re-analysing a capture yields the same ids.
ICS operations are kept per session as a list of structs (`ops`, OP_STRUCT); `session_ops()`
gives the tidy frame (who sent which operation to whom, how often, first frame).

`SessionTracker.last_endpoints` (ENDPOINTS) holds, after each update, what every endpoint of every
segment sent and received in that batch: the device inventory's counters come from it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode.addr import L2_HI, hash_u64, is_group
from plantwatch.core.decode.ics import ICS_L2_APPS, ICS_PORTS
from plantwatch.core.decode.schema import DIR_REQUEST

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
    return (np.asarray(file_id, dtype=np.int64) << 32) | np.asarray(frame, dtype=np.int64)


def ref_file(ref: int) -> int:
    return int(ref) >> 32


def ref_frame(ref: int) -> int:
    return int(ref) & 0xFFFFFFFF


def empty_sessions() -> pl.DataFrame:
    return _EMPTY_SESSIONS.clear()


_NS = 1_000_000_000
_MASK63 = np.uint64((1 << 63) - 1)

# Per-packet flag bits, computed in one polars pass (_SELECT).
_B_PSYN, _B_SYNACK, _B_RST, _B_FIN = 1, 2, 4, 8
_B_CR, _B_DR, _B_HELLO, _B_NOSNI, _B_RDP, _B_FACTS = 16, 32, 64, 128, 256, 512
_B_ERR, _B_UNREACH, _B_APP = 1024, 2048, 4096
_B_TERM = _B_RST | _B_FIN | _B_DR | _B_UNREACH
_B_RARE = _B_PSYN | _B_SYNACK | _B_TERM | _B_CR | _B_HELLO | _B_NOSNI | _B_RDP | _B_FACTS | _B_ERR


def _tcp_lut() -> np.ndarray:
    lut = np.zeros(512, dtype=np.int32)
    for f in range(512):
        lut[f] = ((_B_PSYN if f & 0x12 == 0x02 else 0) | (_B_SYNACK if f & 0x12 == 0x12 else 0)
                  | (_B_RST if f & 0x04 else 0) | (_B_FIN if f & 0x01 else 0))
    return lut


_TCP_LUT = _tcp_lut()


def _flag_bits(packets: pl.DataFrame, proto: np.ndarray, tcp_flags: np.ndarray) -> np.ndarray:
    """The _B_* bits of every packet; columns that are null throughout are not looked at."""
    bits = _TCP_LUT[tcp_flags & 511]
    bits[proto != 6] = 0
    h = packets.height

    def has(col: str) -> bool:
        return packets[col].null_count() < h

    def b(cond: pl.Expr, bit: int) -> pl.Expr:
        return pl.when(cond).then(bit).otherwise(0)

    ex: list[pl.Expr] = []
    if has("cotp_type"):
        ex += [b(pl.col("cotp_type") == 0x0E, _B_CR), b(pl.col("cotp_type") == 0x08, _B_DR)]
    hs = pl.col("tls_hs")
    if has("tls_hs"):
        ex += [b(hs == 1, _B_HELLO), b((hs == 1) & pl.col("tls_sni").is_null(), _B_NOSNI)]
    if has("rdp_cookie"):
        ex.append(b(pl.col("rdp_cookie").is_not_null(), _B_RDP))
    if has("tls_hs") or has("cert_subject") or has("rdp_cookie"):
        ex.append(b(hs.is_not_null() | pl.col("cert_subject").is_not_null()
                    | pl.col("rdp_cookie").is_not_null(), _B_FACTS))
    if has("q_proto") and has("icmp_type"):
        pr = pl.col("ip_proto")
        it = pl.col("icmp_type")
        err = (((pr == 1) & it.is_in([3, 4, 5, 11, 12])) | ((pr == 58) & it.is_in([1, 2, 3, 4]))) & (
            pl.col("q_proto") > 0)
        ex += [b(err, _B_ERR), b(err & (((pr == 1) & (it == 3)) | ((pr == 58) & (it == 1))), _B_UNREACH)]
    if has("app"):
        ex.append(b(pl.col("app") > 0, _B_APP))
    if ex:
        more = packets.select(pl.sum_horizontal(ex).fill_null(0).cast(pl.Int32)).to_series().to_numpy()
        bits = bits | more
    return bits


# ICS on Ethernet directly (GOOSE, PROFINET): a flow between MACs, as addr.L2_HI pairs.
L2_FLOW = (pl.col("ip_ver").fill_null(0) == 0) & pl.col("app").is_in(list(ICS_L2_APPS))


def flow_addresses() -> list[pl.Expr]:
    """src_hi, src_lo, dst_hi, dst_lo of a packet's flow: its IP addresses, or for an
    Ethernet-only ICS packet (L2_FLOW) the MAC pairs of core/decode/addr.L2_HI."""
    def side(ip: str, mac: str) -> list[pl.Expr]:
        return [pl.when(L2_FLOW).then(pl.lit(L2_HI, pl.UInt64))
                .otherwise(pl.col(f"{ip}_hi").fill_null(0)).alias(f"{ip}_hi"),
                pl.when(L2_FLOW).then(pl.col(mac).fill_null(0))
                .otherwise(pl.col(f"{ip}_lo").fill_null(0)).alias(f"{ip}_lo")]
    return [*side("src", "eth_src"), *side("dst", "eth_dst")]


def _select_exprs() -> list[pl.Expr]:
    proto = pl.col("ip_proto").fill_null(0).cast(pl.Int64)
    ported = (proto == 6) | (proto == 17)
    return [
        pl.col("ts").cast(pl.Int64),
        (pl.col("file_id").cast(pl.Int64) * (1 << 32) + pl.col("frame")).alias("ref"),
        pl.col("wirelen").fill_null(0).cast(pl.Int64), pl.col("pay_len").fill_null(0).cast(pl.Int64),
        proto.cast(pl.UInt64).alias("proto"),
        *flow_addresses(),
        pl.col("sport").fill_null(0).cast(pl.UInt64), pl.col("dport").fill_null(0).cast(pl.UInt64),
        pl.col("seq").fill_null(0).cast(pl.Int64), pl.col("eth_src").fill_null(0),
        pl.col("vlan").fill_null(-1).cast(pl.Int64), pl.col("app").fill_null(0),
        pl.col("tcp_flags").fill_null(0).cast(pl.Int32),
        pl.col("q_proto").fill_null(0).cast(pl.Int64),
        pl.col("q_src_hi").fill_null(0), pl.col("q_src_lo").fill_null(0),
        pl.col("q_dst_hi").fill_null(0), pl.col("q_dst_lo").fill_null(0),
        pl.col("q_sport").fill_null(0).cast(pl.UInt64), pl.col("q_dport").fill_null(0).cast(pl.UInt64),
        (((pl.col("ip_ver").fill_null(0) > 0) & ~(ported & pl.col("sport").is_null())) | L2_FLOW).alias("ok"),
    ]


_SELECT = _select_exprs()
_JUNK = np.iinfo(np.int64).min
_DENSE = ["ts", "ref", "wirelen", "pay_len", "proto", "src_hi", "src_lo", "dst_hi", "dst_lo",
          "sport", "dport", "seq", "eth_src", "vlan"]

# Open-table columns and how a new segment merges into them.
_SUM = ["pkts_ab", "pkts_ba", "bytes_ab", "bytes_ba", "pay_ab", "pay_ba", "syn_a", "syn_b",
        "synack_a", "synack_b", "rst_a", "rst_b", "fin_a", "fin_b", "cr_a", "cr_b", "dr_a", "dr_b",
        "unreach", "icmp_err", "nosni", "n_ops"]
# first value wins; -1 (or null for strings) is "not yet"
_FIRST = ["mac_a", "mac_b", "syn_seq", "syn_dir", "synack_dir", "ev_syn", "ev_synack", "ev_rst",
          "ev_fin", "ev_unreach", "ev_dr", "ev_op", "ev_tls", "ev_rdp"]
_LAST = ["last_ts", "last_ref", "last_pure_syn"]
_KEEP = ["sid", "fk", "proto", "a_hi", "a_lo", "a_port", "b_hi", "b_lo", "b_port", "first_ts",
         "first_ref", "orig_dir", "vlan"]
_STR_SCHEMA = {"tls_sni": pl.String(), "tls_ja3_hash": pl.String(), "tls_version": pl.Int32(),
               "cert_subject": pl.String(), "cert_issuer": pl.String(),
               "cert_self_signed": pl.Boolean(), "rdp_cookie": pl.String()}
_OPS_ACC = {"gk": pl.Int64(), "sid": pl.Int64(), "dir": pl.Int8(), "req": pl.Boolean(), "app": pl.UInt8(),
            "code": pl.Int32(), "cls": pl.UInt8(), "name": pl.String(), "count": pl.Int64(),
            "exceptions": pl.Int64(), "first_pos": pl.Int64(), "first_ref": pl.Int64()}
_APPS_ACC = {"sid": pl.Int64(), "app": pl.UInt8(), "n": pl.Int64()}


# Per batch, what each side of each segment sent and received (SessionTracker.last_endpoints):
# the device inventory's packet counters come from here instead of from every packet.
ENDPOINTS: dict[str, pl.DataType] = {
    "hi": pl.UInt64(), "lo": pl.UInt64(), "mac": pl.UInt64(),  # mac 0: none seen
    "pkts_sent": pl.Int64(), "bytes_sent": pl.Int64(), "pkts_recv": pl.Int64(), "bytes_recv": pl.Int64(),
    "first_ts": pl.Int64(), "last_ts": pl.Int64(), "vlan": pl.Int32(),
}


def _endpoints(segs: dict[str, np.ndarray], real: np.ndarray) -> pl.DataFrame:
    every = bool(real.all())

    def g(k: str) -> np.ndarray:
        return segs[k] if every else segs[k][real]

    def side(x: str, y: str) -> dict[str, np.ndarray]:
        xy, yx = f"{x}{y}", f"{y}{x}"
        return {"hi": g(f"{x}_hi"), "lo": g(f"{x}_lo"),
                "mac": np.maximum(g(f"mac_{x}"), 0).astype(np.uint64),
                "pkts_sent": g("pkts_" + xy), "bytes_sent": g("bytes_" + xy),
                "pkts_recv": g("pkts_" + yx), "bytes_recv": g("bytes_" + yx),
                "first_ts": g("first_ts"), "last_ts": g("last_ts"), "vlan": g("vlan")}
    a, b = side("a", "b"), side("b", "a")
    both = {k: np.concatenate([a[k], b[k]]) for k in a}
    return pl.DataFrame(both).with_columns(
        pl.when(pl.col("vlan") >= 0).then(pl.col("vlan"))).cast(ENDPOINTS)


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
_ICS_ARR = np.array(sorted(ICS_PORTS), dtype=np.int64)
_EV = ["ev_syn", "ev_synack", "ev_rst", "ev_fin", "ev_unreach", "ev_dr", "ev_op", "ev_tls", "ev_rdp"]
_OPEN_COLS = _KEEP + _LAST + _SUM + _FIRST


def _take(cols: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: cols[k][idx] for k in _OPEN_COLS}


def _pick(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """The rows of `mask` (no copy when it selects everything)."""
    if mask.all():
        return cols
    return _take(cols, np.flatnonzero(mask))


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if p["sid"].size]
    if not parts:
        return {k: np.zeros(0, dtype=np.int64) for k in _OPEN_COLS}
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in _OPEN_COLS}


class _OpenTable:
    """The open sessions, one row per flow key, as numpy columns with spare capacity.

    Rows live in slots; a removed row's slot is dead until the next compaction, so a batch
    costs O(rows it touches) plus two O(n) index edits, never a rebuild of every column.
    """

    COMPACT_MIN = 4096  # dead slots tolerated before compacting

    def __init__(self) -> None:
        self.cols: dict[str, np.ndarray] = _concat([])  # slot arrays (capacity long)
        self.size = 0                                   # slots used (live or dead)
        self.n = 0                                      # live rows
        self.alive = np.zeros(0, dtype=bool)
        self._keys = np.zeros(0, dtype=np.int64)        # fk of the live rows, sorted
        self._rows = np.zeros(0, dtype=np.int64)        # their slots

    def find(self, fks: np.ndarray) -> np.ndarray:
        """Slot of each flow key's open row, -1 when not open."""
        if self.n == 0:
            return np.full(fks.size, -1, dtype=np.int64)
        j = np.minimum(np.searchsorted(self._keys, fks), self._keys.size - 1)
        return np.where(self._keys[j] == fks, self._rows[j], -1)

    def live(self) -> np.ndarray:
        return np.flatnonzero(self.alive[: self.size])

    def take(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return _take(self.cols, rows)

    def remove(self, rows: np.ndarray) -> None:
        if rows.size == 0:
            return
        self.alive[rows] = False
        self.n -= int(rows.size)
        keep = self.alive[self._rows]
        self._keys, self._rows = self._keys[keep], self._rows[keep]
        if self.size - self.n > max(self.COMPACT_MIN, self.n):
            self._compact()

    def _compact(self) -> None:
        live = self.live()
        self.cols = {k: v[live] for k, v in self.cols.items()}
        self.size = self.n = int(live.size)
        self.alive = np.ones(self.size, dtype=bool)
        order = np.argsort(self.cols["fk"], kind="stable")
        self._keys, self._rows = self.cols["fk"][order], order

    def append(self, part: dict[str, np.ndarray]) -> None:
        k = int(part["sid"].size)
        if k == 0:
            return
        cap = self.alive.size
        if self.size + k > cap:
            new_cap = max(1024, 2 * (self.size + k))
            grown = {}
            for name, v in self.cols.items():
                g = np.zeros(new_cap, dtype=part[name].dtype)
                g[: self.size] = v[: self.size]
                grown[name] = g
            self.cols = grown
            alive = np.zeros(new_cap, dtype=bool)
            alive[: self.size] = self.alive[: self.size]
            self.alive = alive
        a, b = self.size, self.size + k
        for name in _OPEN_COLS:
            self.cols[name][a:b] = part[name]
        self.alive[a:b] = True
        self.size = b
        self.n += k
        fk = part["fk"]
        slots = np.arange(a, b)
        if k > 1 and (fk[1:] < fk[:-1]).any():
            order = np.argsort(fk, kind="stable")
            fk, slots = fk[order], slots[order]
        pos = np.searchsorted(self._keys, fk)
        self._keys = np.insert(self._keys, pos, fk)
        self._rows = np.insert(self._rows, pos, slots)


def _fold_ops(o: pl.DataFrame) -> pl.DataFrame:
    """Merge op rows of the same (session, direction, op) key (by value: `gk` is per process)."""
    return o.group_by(["sid", "dir", "req", "app", "code", "cls", "name"]).agg(
        pl.col("gk").first(),
        pl.col("count").sum(), pl.col("exceptions").sum(),
        pl.col("first_pos").min(), pl.col("first_ref").get(pl.col("first_pos").arg_min()),
    ).select(list(_OPS_ACC))


class SessionTracker:
    """Turns decoded packet batches into sessions. Packet time only; deterministic."""

    def __init__(self, tcp_unanswered_s: float = 5.0, tcp_idle_s: float = 300.0,
                 udp_idle_s: float = 60.0, icmp_idle_s: float = 30.0,
                 tcp_linger_s: float = 2.0) -> None:
        self.t_unans = int(tcp_unanswered_s * _NS)
        self.t_tcp = int(tcp_idle_s * _NS)
        self.t_udp = int(udp_idle_s * _NS)
        self.t_icmp = int(icmp_idle_s * _NS)
        self.t_linger = int(tcp_linger_s * _NS)
        self._open = _OpenTable()
        # a frame copy of the open table, made by open_sessions(): core/store/state.py saves
        # frames, so a tracker restored from it picks its open sessions up from here
        self._open_saved: pl.DataFrame | None = None
        self._facts = pl.DataFrame(schema={"sid": pl.Int64(), **_STR_SCHEMA})
        self._facts_new: list[pl.DataFrame] = []
        self._apps = pl.DataFrame(schema=_APPS_ACC)
        self._ops = pl.DataFrame(schema=_OPS_ACC)
        self._ops_new: list[pl.DataFrame] = []
        self._apps_new: list[pl.DataFrame] = []
        self._now: int = 0
        self.last_endpoints = pl.DataFrame(schema=ENDPOINTS)  # of the last update (see ENDPOINTS)
        self._pos_base = 0  # makes ops' first_pos increase across batches

    # --- public ---------------------------------------------------------------------------

    def update(self, packets: pl.DataFrame, ops: pl.DataFrame | None = None) -> pl.DataFrame:
        """Feed one batch; return the sessions that ended in it (SESSIONS schema)."""
        self._restore()
        ended: list[dict[str, np.ndarray]] = []
        self.last_endpoints = pl.DataFrame(schema=ENDPOINTS)
        if packets.height:
            self._now = max(self._now, int(packets["ts"].max()))
            segs = self._segments(packets, ops)
            self._side_tables()
            if segs is not None:
                ended.append(self._merge(segs))
        ended.append(self._expire())
        rows = _concat(ended)
        self._open_saved = None  # the table changed
        if rows["sid"].size == 0:
            return empty_sessions()
        return self._finish(rows, final=True, drop=True)

    def flush(self) -> pl.DataFrame:
        """End of input: every open session, ended (SESSIONS schema)."""
        self._restore()
        self._open_saved = None
        if self._open.n == 0:
            return empty_sessions()
        rows = self._open.take(self._open.live())
        self._open = _OpenTable()
        return self._finish(rows, final=False, drop=True)

    def open_sessions(self) -> pl.DataFrame:
        """The sessions still open, as they stand (SESSIONS schema)."""
        self._restore()
        rows = self._open.take(self._open.live())
        self._open_saved = pl.DataFrame(rows)
        if self._open.n == 0:
            return empty_sessions()
        return self._finish(rows, final=False, drop=False)

    def _restore(self) -> None:
        """Load the open table from `_open_saved` after core/store/state.py restored it."""
        saved = self._open_saved
        if saved is not None and saved.height and self._open.n == 0:
            self._open.append({k: saved[k].to_numpy() for k in _OPEN_COLS})

    @property
    def now(self) -> int:
        return self._now

    # --- per batch: packets to segments ---------------------------------------------------

    def _segments(self, packets: pl.DataFrame, ops: pl.DataFrame | None) -> dict[str, np.ndarray] | None:
        cols = packets.select(_SELECT)
        okm = cols["ok"].to_numpy()
        n = cols.height
        if n == 0 or not okm.any():
            return None
        c = {k: cols[k].to_numpy() for k in _DENSE}
        bits = _flag_bits(packets, c["proto"], cols["tcp_flags"].to_numpy())
        proto, s_hi, s_lo, d_hi, d_lo, s_pt, d_pt = (
            c["proto"], c["src_hi"], c["src_lo"], c["dst_hi"], c["dst_lo"], c["sport"], c["dport"])
        erri = np.flatnonzero(bits & _B_ERR)
        if erri.size:
            # an ICMP error belongs to the flow it quotes
            q = cols[erri].select("q_proto", "q_src_hi", "q_src_lo", "q_dst_hi", "q_dst_lo",
                                  "q_sport", "q_dport")
            proto, s_hi, s_lo, d_hi, d_lo, s_pt, d_pt = (
                x.copy() for x in (proto, s_hi, s_lo, d_hi, d_lo, s_pt, d_pt))
            qp = q["q_proto"].to_numpy().astype(np.uint64)
            proto[erri] = qp
            s_hi[erri], s_lo[erri] = q["q_src_hi"].to_numpy(), q["q_src_lo"].to_numpy()
            d_hi[erri], d_lo[erri] = q["q_dst_hi"].to_numpy(), q["q_dst_lo"].to_numpy()
            ported = (qp == 6) | (qp == 17)
            s_pt[erri] = np.where(ported, q["q_sport"].to_numpy(), 0)
            d_pt[erri] = np.where(ported, q["q_dport"].to_numpy(), 0)
        if (s_hi | d_hi).any():
            swap = (s_hi > d_hi) | ((s_hi == d_hi) & ((s_lo > d_lo) | ((s_lo == d_lo) & (s_pt > d_pt))))
        else:
            swap = (s_lo > d_lo) | ((s_lo == d_lo) & (s_pt > d_pt))
        a_hi = np.where(swap, d_hi, s_hi)
        a_lo = np.where(swap, d_lo, s_lo)
        b_hi = np.where(swap, s_hi, d_hi)
        b_lo = np.where(swap, s_lo, d_lo)
        a_pt = np.where(swap, d_pt, s_pt)
        b_pt = np.where(swap, s_pt, d_pt)
        packed = (proto << 32) | (a_pt << 16) | b_pt
        fk = hash_u64(packed, a_lo, b_lo)
        v6 = (a_hi | b_hi) != 0
        if v6.any():  # IPv6 flows fold in their high halves (IPv4 rows have none)
            with np.errstate(over="ignore"):
                hh = a_hi[v6] ^ (b_hi[v6] * np.uint64(0x9E3779B97F4A7C15))
            fk[v6] = hash_u64(fk[v6], hh)
        fk = fk.view(np.int64)
        if not okm.all():  # not a flow (no IP, or no ports): one junk flow, dropped below
            fk = np.where(okm, fk, _JUNK)
        orig = swap.view(np.int8)            # side (0 a, 1 b) that sent the (quoted) packet
        pdir0 = orig ^ ((bits & _B_ERR) != 0).view(np.int8)  # side that sent this packet

        ts0 = c["ts"]
        if n > 1 and (ts0[1:] < ts0[:-1]).any():
            order = np.argsort(ts0, kind="stable")
            order = order[np.argsort(fk[order], kind="stable")]
        else:
            order = np.argsort(fk, kind="stable")
        fk, ts, bits, pdir = fk[order], ts0[order], bits[order], pdir0[order]
        wl, pl_ = c["wirelen"][order], c["pay_len"][order]
        f_proto = proto[order]

        pure_syn = (bits & _B_PSYN) != 0
        a_side = pdir == 0
        first = np.ones(n, dtype=bool)
        first[1:] = fk[1:] != fk[:-1]
        fidx = np.flatnonzero(first)
        carry = self._carry(fk[fidx])
        has_c = carry["row"] >= 0
        c_last_ts = carry["last_ts"]
        c_pure = carry["last_pure_syn"]
        c_seq = carry["syn_seq"]
        c_rst, c_fa, c_fb, c_dr = (carry[k] for k in ("rst", "fin_a", "fin_b", "dr"))
        flow_no = np.cumsum(first) - 1  # index into fidx / carry
        has_prior = ~first | has_c[flow_no]

        # a pure SYN whose seq differs from the flow's previous SYN (in batch, else carried) starts
        # a new session; only rows with a pure SYN are looked at
        psi = np.flatnonzero(pure_syn)
        seq = np.zeros(n, dtype=np.int64)
        new_isn = np.zeros(n, dtype=bool)
        if psi.size:
            seq[psi] = c["seq"][order[psi]]
            fl = flow_no[psi]
            prev_same = np.zeros(psi.size, dtype=bool)
            prev_same[1:] = fl[1:] == fl[:-1]
            before = np.where(prev_same, np.concatenate(([0], seq[psi][:-1])), c_seq[fl])
            new_isn[psi] = has_prior[psi] & (before != seq[psi])

        start1 = first | new_isn
        s1 = np.flatnonzero(start1)
        cont1 = first[s1] & has_c[flow_no[s1]] & ~new_isn[s1]

        prev_ts = np.empty(n, dtype=np.int64)
        prev_ts[1:] = ts[:-1]
        prev_ts[fidx] = c_last_ts
        prev_pure = np.empty(n, dtype=bool)
        prev_pure[1:] = pure_syn[:-1]
        prev_pure[fidx] = c_pure
        gap = ts - prev_ts
        idle = np.where(f_proto == 6, self.t_tcp, np.where(f_proto == 17, self.t_udp, self.t_icmp))
        gap_break = has_prior & (gap > np.where(prev_pure, self.t_unans, idle))
        # after the session ended (RST, FIN both ways, COTP DR, ICMP unreachable) the shorter
        # linger applies; only rows with a gap longer than it need to know whether it ended
        cand = np.flatnonzero(has_prior & ~gap_break & (gap > self.t_linger))
        if cand.size:
            k1 = np.searchsorted(s1, cand, side="right") - 1  # first-pass segment of each
            lo_ = s1[k1]
            carried = cont1[k1]
            fl = flow_no[cand]

            def seen(idx: np.ndarray, carried_count: np.ndarray) -> np.ndarray:
                j = np.searchsorted(idx, cand) - 1       # the last flagged row before cand
                inside = (j >= 0) & (idx[np.maximum(j, 0)] >= lo_) if idx.size else np.zeros(cand.size, bool)
                return inside | (carried & (carried_count[fl] > 0))

            fin = (bits & _B_FIN) != 0
            ended = (seen(np.flatnonzero(bits & (_B_RST | _B_UNREACH)), c_rst)
                     | (seen(np.flatnonzero(fin & a_side), c_fa) & seen(np.flatnonzero(fin & ~a_side), c_fb))
                     | seen(np.flatnonzero(bits & _B_DR), c_dr))
            gap_break[cand[ended]] = True
        start = start1 | gap_break
        st = np.flatnonzero(start)
        nseg = st.size
        seg = np.cumsum(start) - 1
        en = np.empty(nseg, dtype=np.int64)
        en[:-1] = st[1:] - 1
        en[-1] = n - 1
        cont = first[st] & has_c[flow_no[st]] & ~new_isn[st] & ~gap_break[st]
        last_of_flow = np.ones(nseg, dtype=bool)
        last_of_flow[:-1] = fk[st[1:]] != fk[st[:-1]]

        plain = (bits & _B_ERR) == 0
        ab = plain & a_side
        ba = plain & ~a_side
        ref0 = c["ref"]
        o_st, o_en = order[st], order[en]
        segs: dict[str, np.ndarray] = {
            "fk": fk[st], "proto": f_proto[st],
            "a_hi": a_hi[o_st], "a_lo": a_lo[o_st], "a_port": a_pt[o_st],
            "b_hi": b_hi[o_st], "b_lo": b_lo[o_st], "b_port": b_pt[o_st],
            "first_ts": ts[st], "first_ref": ref0[o_st], "orig_dir": orig[o_st].astype(np.int64),
            "vlan": c["vlan"][o_st],
            "last_ts": ts[en], "last_ref": ref0[o_en], "last_pure_syn": pure_syn[en],
            "pkts_ab": np.add.reduceat(ab.view(np.int8), st, dtype=np.int64),
            "pkts_ba": np.add.reduceat(ba.view(np.int8), st, dtype=np.int64),
            "bytes_ab": np.add.reduceat(np.where(ab, wl, 0), st, dtype=np.int64),
            "bytes_ba": np.add.reduceat(np.where(ba, wl, 0), st, dtype=np.int64),
            "pay_ab": np.add.reduceat(np.where(ab, pl_, 0), st, dtype=np.int64),
            "pay_ba": np.add.reduceat(np.where(ba, pl_, 0), st, dtype=np.int64),
        }
        # the rare flags: counted and located on the few rows that carry them
        ri = np.flatnonzero(bits & _B_RARE)
        rb, rs, rd = bits[ri], seg[ri], pdir[ri]
        rref = ref0[order[ri]]

        def cnt(mask: np.ndarray) -> np.ndarray:
            return np.bincount(rs[mask], minlength=nseg).astype(np.int64)

        def first_of(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
            out = np.full(nseg, -1, dtype=np.int64)
            ix = np.flatnonzero(mask)
            if ix.size:
                ss = rs[ix]
                keep = np.ones(ix.size, dtype=bool)
                keep[1:] = ss[1:] != ss[:-1]
                out[ss[keep]] = values[ix[keep]]
            return out

        ra = rd == 0
        for name, bit in (("syn", _B_PSYN), ("synack", _B_SYNACK), ("rst", _B_RST), ("fin", _B_FIN),
                          ("cr", _B_CR), ("dr", _B_DR)):
            m = (rb & bit) != 0
            segs[name + "_a"] = cnt(m & ra)
            segs[name + "_b"] = cnt(m & ~ra)
        unr = (rb & _B_UNREACH) != 0
        segs["unreach"] = cnt(unr)
        segs["icmp_err"] = cnt((rb & _B_ERR) != 0)
        segs["nosni"] = cnt((rb & _B_NOSNI) != 0)
        psyn_r = (rb & _B_PSYN) != 0
        synack_r = (rb & _B_SYNACK) != 0
        segs["syn_seq"] = first_of(psyn_r, seq[ri])
        segs["syn_dir"] = first_of(psyn_r, rd.astype(np.int64))
        segs["synack_dir"] = first_of(synack_r, rd.astype(np.int64))
        for name, bit in (("ev_syn", _B_PSYN), ("ev_synack", _B_SYNACK), ("ev_rst", _B_RST),
                          ("ev_fin", _B_FIN), ("ev_unreach", _B_UNREACH), ("ev_dr", _B_DR),
                          ("ev_tls", _B_HELLO), ("ev_rdp", _B_RDP)):
            segs[name] = first_of((rb & bit) != 0, rref)
        # MACs: the source MAC of the first packet each way
        mac0 = c["eth_src"]
        for name, m in (("mac_a", ab), ("mac_b", ba)):
            ix = np.flatnonzero(m)
            out = np.full(nseg, -1, dtype=np.int64)
            if ix.size:
                ss = seg[ix]
                keep = np.ones(ix.size, dtype=bool)
                keep[1:] = ss[1:] != ss[:-1]
                v = mac0[order[ix[keep]]].astype(np.int64)
                out[ss[keep]] = np.where(v > 0, v, -1)
            segs[name] = out

        # session ids: carried for continuing segments, a new hash for the others
        c_sid = carry["sid"]
        new_sid = (hash_u64(fk[st], ts[st]) & _MASK63).view(np.int64)
        sid = np.where(cont, c_sid[flow_no[st]], new_sid)
        real = fk[st] != _JUNK
        self.last_endpoints = _endpoints(segs, real)
        sid = np.where(real, sid, -1)
        segs["sid"] = sid
        segs["n_ops"] = np.zeros(nseg, dtype=np.int64)
        segs["ev_op"] = np.full(nseg, -1, dtype=np.int64)
        segs["cont"] = cont
        segs["last_of_flow"] = last_of_flow
        segs["orow"] = np.where(cont, carry["row"][flow_no[st]], -1)  # the open row it continues

        # rare string facts (TLS, certificates, RDP): only the rows that carry them
        fi = ri[(rb & _B_FACTS) != 0]
        fi = fi[sid[seg[fi]] >= 0]
        if fi.size:
            sub = packets[order[fi]].select(list(_STR_SCHEMA)).with_columns(
                pl.Series("sid", sid[seg[fi]]))
            self._facts_new.append(sub.group_by("sid", maintain_order=True).agg(
                [pl.col(k).drop_nulls().first() for k in _STR_SCHEMA]))

        # app counts per session: runs of (segment, app) in sorted order
        appi = np.flatnonzero(bits & _B_APP)
        if appi.size:
            k = seg[appi] * 256 + cols["app"].to_numpy()[order[appi]].astype(np.int64)
            brk = np.ones(k.size, dtype=bool)
            brk[1:] = k[1:] != k[:-1]
            rs_ = np.flatnonzero(brk)
            runs = np.diff(np.append(rs_, k.size))
            ku = k[rs_]
            rsid = sid[ku // 256]
            m = rsid >= 0
            self._apps_new.append(pl.DataFrame(
                {"sid": rsid[m], "app": (ku[m] % 256).astype(np.uint8), "n": runs[m].astype(np.int64)}))

        if ops is not None and ops.height:
            self._add_ops(segs, ops, ref0, order, seg, sid, pdir0, n)
        if not real.all():
            segs = {k: v[real] for k, v in segs.items()}
        return segs

    def _add_ops(self, segs: dict[str, np.ndarray], ops: pl.DataFrame, ref0: np.ndarray, order: np.ndarray,
                 seg: np.ndarray, sid: np.ndarray, pdir0: np.ndarray, n: int) -> pl.DataFrame:
        """ICS operations per session, joined to their packet by (file_id, frame)."""
        o = ops.select(
            (pl.col("file_id").cast(pl.Int64) * (1 << 32) + pl.col("frame")).alias("ref"),
            (pl.col("direction") == DIR_REQUEST).fill_null(False).alias("req"),
            pl.col("app").fill_null(0), pl.col("code"), pl.col("cls").fill_null(0), pl.col("name"),
            pl.col("exception").is_not_null().cast(pl.Int64).alias("exc"),
            pl.col("name").hash(seed=7).alias("nh"), pl.col("code").fill_null(-1).alias("cd"),
        )
        oref = o["ref"].to_numpy()
        if ref0.size > 1 and (ref0[1:] > ref0[:-1]).all():
            srt, keys = None, ref0
        else:
            srt = np.argsort(ref0, kind="stable")
            keys = ref0[srt]
        k = np.minimum(np.searchsorted(keys, oref), keys.size - 1)
        hit = keys[k] == oref
        row = k if srt is None else srt[k]          # row in the batch
        inv = np.empty(n, dtype=np.int64)
        inv[order] = np.arange(n)
        pos = inv[row]                               # position in the sorted batch
        osid = sid[seg[pos]]
        odir = pdir0[row]
        ok = hit & (osid >= 0)
        small = (odir.astype(np.uint64) | (o["req"].to_numpy().astype(np.uint64) << np.uint64(1))
                 | (o["cls"].to_numpy().astype(np.uint64) << np.uint64(2))
                 | (o["app"].to_numpy().astype(np.uint64) << np.uint64(8))
                 | ((o["cd"].to_numpy().astype(np.int64) & 0xFFFFFFFF).astype(np.uint64) << np.uint64(16)))
        gk = hash_u64(osid, small, o["nh"].to_numpy()).view(np.int64)
        o = o.with_columns(pl.Series("sid", osid), pl.Series("dir", odir), pl.Series("gk", gk),
                           pl.Series("first_pos", pos + self._pos_base)).filter(pl.Series(ok))
        self._pos_base += n + 1
        if o.height == 0:
            return
        oa = o.group_by("gk").agg(
            pl.col("sid", "dir", "req", "app", "code", "cls", "name").first(),
            pl.len().cast(pl.Int64).alias("count"), pl.col("exc").sum().alias("exceptions"),
            pl.col("first_pos").min(), pl.col("ref").get(pl.col("first_pos").arg_min()).alias("first_ref"),
        )
        per = oa.group_by("sid").agg(
            pl.col("count").sum().alias("n"),
            pl.col("first_ref").get(pl.col("first_pos").arg_min()).alias("ev")).sort("sid")
        psid = per["sid"].to_numpy()
        dsid = segs["sid"]
        j = np.minimum(np.searchsorted(psid, dsid), psid.size - 1)
        found = psid[j] == dsid
        segs["n_ops"] = np.where(found, per["n"].to_numpy()[j], 0)
        segs["ev_op"] = np.where(found, per["ev"].to_numpy()[j], -1)
        self._ops_new.append(oa.select(list(_OPS_ACC)).cast(_OPS_ACC))

    def _side_tables(self) -> None:
        """Fold this batch's op/app/fact rows into the side tables; compact them when they grow."""
        if self._facts_new:
            # the first non-null value of each fact wins: older rows come first
            self._facts = pl.concat([self._facts, *self._facts_new]).group_by(
                "sid", maintain_order=True).agg([pl.col(k).drop_nulls().first() for k in _STR_SCHEMA])
            self._facts_new = []
        if self._ops_new:
            self._ops = pl.concat([self._ops, *self._ops_new])
            self._ops_new = []
        if self._apps_new:
            self._apps = pl.concat([self._apps, *self._apps_new])
            self._apps_new = []
        nopen = self._open.n
        if self._ops.height > 4 * nopen + 20000:
            self._ops = _fold_ops(self._ops)
        if self._apps.height > 4 * nopen + 20000:
            self._apps = self._apps.group_by(["sid", "app"]).agg(pl.col("n").sum())

    def _carry(self, fks: np.ndarray) -> dict[str, np.ndarray]:
        """Per flow key, its open session's row and state (row -1 when none)."""
        o = self._open
        row = o.find(fks)
        hit = row >= 0
        r = np.maximum(row, 0)

        def get(k: str, default: int) -> np.ndarray:
            return np.where(hit, o.cols[k][r], default) if o.n else np.full(fks.size, default)

        return {
            "row": row, "sid": get("sid", -1), "last_ts": get("last_ts", 0),
            "last_pure_syn": get("last_pure_syn", 0).astype(bool), "syn_seq": get("syn_seq", -1),
            "rst": (get("rst_a", 0) + get("rst_b", 0) + get("unreach", 0)),
            "fin_a": get("fin_a", 0), "fin_b": get("fin_b", 0), "dr": get("dr_a", 0) + get("dr_b", 0),
        }

    def _merge(self, segs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Fold a batch's segments into the open table; return the rows of sessions that ended."""
        o = self._open
        cont = segs["cont"]
        orow = segs["orow"]
        new = {k: segs[k] for k in _OPEN_COLS}
        if cont.any():
            ci = np.flatnonzero(cont)
            r = orow[ci]
            for k in _KEEP:
                new[k] = new[k].copy()
                new[k][ci] = o.cols[k][r]
            for k in _SUM:
                new[k] = new[k].copy()
                new[k][ci] += o.cols[k][r]
            for k in _FIRST:
                old = o.cols[k][r]
                new[k] = new[k].copy()
                new[k][ci] = np.where(old >= 0, old, new[k][ci])
        last = segs["last_of_flow"]
        ended = [_pick(new, ~last)]
        if o.n:
            # open rows of the flows seen in this batch: replaced by their last segment, or ended
            fks = segs["fk"]  # in flow-key order: each flow's segments are adjacent
            touched = o.find(fks[last])
            touched = touched[touched >= 0]
            continued = np.zeros(o.size, dtype=bool)
            continued[orow[cont]] = True
            ended.insert(0, o.take(touched[~continued[touched]]))
            o.remove(touched)
        o.append(_pick(new, last))
        return _concat(ended)

    def _expire(self) -> dict[str, np.ndarray]:
        o = self._open
        if o.n == 0:
            return _concat([])
        live = o.live()
        c = {k: o.cols[k][live] for k in ("rst_a", "rst_b", "unreach", "dr_a", "dr_b", "fin_a", "fin_b",
                                          "proto", "last_pure_syn", "last_ts")}
        term = (((c["rst_a"] + c["rst_b"] + c["unreach"] + c["dr_a"] + c["dr_b"]) > 0)
                | ((c["fin_a"] > 0) & (c["fin_b"] > 0)))
        proto = c["proto"]
        idle = np.where(proto == 6, self.t_tcp, np.where(proto == 17, self.t_udp, self.t_icmp))
        limit = np.where(term, self.t_linger, np.where(c["last_pure_syn"], self.t_unans, idle))
        gone = live[(self._now - c["last_ts"]) > limit]
        out = o.take(gone)
        o.remove(gone)
        return out

    def _finish(self, rows: dict[str, np.ndarray], final: bool, drop: bool) -> pl.DataFrame:
        """Open-table rows to the SESSIONS schema; `drop` forgets their side tables.

        `final`: the sessions ended before the end of input, so one still waiting for an answer
        is unanswered (at the end of input it stays attempted until the timeout passed)."""
        g = rows
        nrows = g["sid"].size
        isin = pl.col("sid").is_in(pl.Series(g["sid"]).implode())
        apps = self._apps.filter(isin)
        opsr = self._ops.filter(isin)
        facts = self._facts.filter(isin) if self._facts.height else self._facts
        if drop:
            self._apps = self._apps.filter(~isin)
            self._ops = self._ops.filter(~isin)
            if facts.height:
                self._facts = self._facts.filter(~isin)

        ap, bp = g["a_port"].astype(np.int64), g["b_port"].astype(np.int64)
        ics_a, ics_b = np.isin(ap, _ICS_ARR), np.isin(bp, _ICS_ARR)
        wk_a, wk_b = (ap > 0) & (ap < 1024), (bp > 0) & (bp < 1024)
        cb = np.select(
            [g["syn_dir"] >= 0, g["synack_dir"] >= 0, ics_a & ~ics_b, ics_b & ~ics_a, wk_a & ~wk_b,
             wk_b & ~wk_a],
            [g["syn_dir"] == 1, g["synack_dir"] == 0, True, False, True, False],
            default=g["orig_dir"] == 1).astype(bool)

        def cs(a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
            """(client's, server's) value of an a/b column pair."""
            return np.where(cb, g[b], g[a]), np.where(cb, g[a], g[b])

        c_hi, s_hi = cs("a_hi", "b_hi")
        c_lo, s_lo = cs("a_lo", "b_lo")
        c_pt, s_pt = cs("a_port", "b_port")
        c_mac, s_mac = cs("mac_a", "mac_b")
        p_c, p_s = cs("pkts_ab", "pkts_ba")
        b_c, b_s = cs("bytes_ab", "bytes_ba")
        y_c, y_s = cs("pay_ab", "pay_ba")
        syn_c, syn_s = cs("syn_a", "syn_b")
        sa_c, sa_s = cs("synack_a", "synack_b")
        rst_c, rst_s = cs("rst_a", "rst_b")
        fin_c, fin_s = cs("fin_a", "fin_b")
        cr_c, _ = cs("cr_a", "cr_b")
        _, dr_s = cs("dr_a", "dr_b")
        unreach = g["unreach"]
        handshake = sa_s > 0
        midstream = (syn_c + syn_s + sa_c + sa_s) == 0
        no_answer = p_s == 0
        waited = (self._now - g["last_ts"]) > self.t_unans
        tcp_state = np.select(
            [(dr_s > 0) & (cr_c > 0), (fin_c > 0) & (fin_s > 0),
             ((rst_c + rst_s) > 0) & (handshake | (midstream & ~no_answer)),
             ((rst_s > 0) | (unreach > 0)) & ~handshake, handshake | midstream, final | waited],
            [_ST_REFUSED, _ST_CLOSED, _ST_RESET, _ST_REFUSED, _ST_ESTABLISHED, _ST_UNANSWERED],
            default=_ST_ATTEMPTED)
        oneway = (is_group(s_hi, s_lo) | ((g["proto"] == 17) & (np.isin(c_pt, ONEWAY_UDP_PORTS)
                                                              | np.isin(s_pt, ONEWAY_UDP_PORTS))))
        other_state = np.select([(unreach > 0) & no_answer, ~no_answer, oneway],
                                [_ST_UNREACHABLE, _ST_ANSWERED, _ST_ONEWAY], default=_ST_UNANSWERED)
        proto = g["proto"].astype(np.int64)
        state = np.where(proto == 6, tcp_state, other_state)

        # the most common app of each session
        app = np.zeros(nrows, dtype=np.uint8)
        if apps.height:
            top = apps.group_by(["sid", "app"]).agg(pl.col("n").sum()).sort(
                ["sid", "n", "app"], descending=[False, True, False]).unique("sid", keep="first").sort("sid")
            ts_, ta = top["sid"].to_numpy(), top["app"].to_numpy()
            j = np.minimum(np.searchsorted(ts_, g["sid"]), ts_.size - 1)
            app = np.where(ts_[j] == g["sid"], ta[j], 0).astype(np.uint8)

        fr, lr = g["first_ref"], g["last_ref"]
        cols: dict[str, np.ndarray | pl.Series] = {
            "session_id": g["sid"], "proto": proto.astype(np.uint8), "state": state.astype(np.uint8),
            "app": app, "client_hi": c_hi, "client_lo": c_lo, "client_port": c_pt,
            "server_hi": s_hi, "server_lo": s_lo, "server_port": s_pt,
            "client_mac": c_mac, "server_mac": s_mac, "vlan": g["vlan"],
            "first_ts": g["first_ts"], "last_ts": g["last_ts"], "pkts_c2s": p_c, "pkts_s2c": p_s,
            "bytes_c2s": b_c, "bytes_s2c": b_s, "payload_c2s": y_c, "payload_s2c": y_s,
            "first_file": fr >> 32, "first_frame": fr & 0xFFFFFFFF,
            "last_file": lr >> 32, "last_frame": lr & 0xFFFFFFFF,
            "syn_count": syn_c, "handshake": handshake, "midstream": midstream & (proto == 6),
            "rst_client": rst_c, "rst_server": rst_s, "icmp_errors": g["icmp_err"],
            "to_group": is_group(s_hi, s_lo),
            **{k: g[k] for k in _EV},
            "tls_no_sni": g["nosni"] > 0, "n_ops": g["n_ops"],
        }
        neg_null = [*_EV, "vlan"]
        out = pl.DataFrame(cols).with_columns(
            *[pl.when(pl.col(k) >= 0).then(pl.col(k)).alias(k) for k in neg_null],
            *[pl.when(pl.col(k) > 0).then(pl.col(k)).alias(k) for k in ("client_mac", "server_mac")],
            pl.col("state").replace_strict(_STATE_MAP, return_dtype=pl.String),
        )
        if facts.height:
            out = out.join(facts.rename({"sid": "session_id"}), on="session_id", how="left",
                           maintain_order="left")
        else:
            out = out.with_columns([pl.lit(None, dtype=t).alias(k) for k, t in _STR_SCHEMA.items()])
        if opsr.height:
            ol = _fold_ops(opsr).join(pl.DataFrame({"sid": g["sid"], "cb": cb}), on="sid").sort(
                ["sid", "first_pos"]).group_by("sid", maintain_order=True).agg(
                pl.struct(
                    "app", "code", "cls", "name",
                    (pl.col("dir") == pl.col("cb").cast(pl.Int8)).alias("from_client"),
                    pl.col("req").alias("requests"), "count", "exceptions", "first_ref",
                ).alias("ops")).rename({"sid": "session_id"})
            out = out.join(ol, on="session_id", how="left", maintain_order="left")
        else:
            out = out.with_columns(pl.lit(None, dtype=pl.List(OP_STRUCT)).alias("ops"))
        return out.select(list(SESSIONS)).cast(SESSIONS).sort("first_ts", "session_id")


def session_ops(sessions: pl.DataFrame) -> pl.DataFrame:
    """The tidy frame of operations (SESSION_OPS): who sent which op to whom, and how often.

    `src`/`dst` are the sender and receiver of the operation PDUs (the client for requests it
    sent; the server for its responses), so "which ops did X send to Y" is a filter on them.
    """
    if sessions.height == 0:
        return pl.DataFrame(schema=SESSION_OPS)
    e = sessions.select("session_id", "client_hi", "client_lo", "server_hi", "server_lo",
                        "server_port", "ops").explode("ops").filter(pl.col("ops").is_not_null())
    if e.height == 0:
        return pl.DataFrame(schema=SESSION_OPS)
    e = e.unnest("ops")
    fc = pl.col("from_client")
    return e.select(
        "session_id", "client_hi", "client_lo", "server_hi", "server_lo", "server_port",
        pl.when(fc).then(pl.col("client_hi")).otherwise(pl.col("server_hi")).alias("src_hi"),
        pl.when(fc).then(pl.col("client_lo")).otherwise(pl.col("server_lo")).alias("src_lo"),
        pl.when(fc).then(pl.col("server_hi")).otherwise(pl.col("client_hi")).alias("dst_hi"),
        pl.when(fc).then(pl.col("server_lo")).otherwise(pl.col("client_lo")).alias("dst_lo"),
        "app", "code", "cls", "name", "from_client", "requests", "count", "exceptions",
        (pl.col("first_ref") // (1 << 32)).cast(pl.Int32).alias("first_file"),
        (pl.col("first_ref") % (1 << 32)).alias("first_frame"),
    ).cast(SESSION_OPS)


__all__ = ["SESSIONS", "SESSION_OPS", "SessionTracker", "session_ops", "make_ref", "ref_file",
           "ref_frame", "empty_sessions", "FAILED_STATES", "ENDPOINTS"]
