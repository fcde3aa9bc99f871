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

from plantwatch.core.capture.refs import ref_capture_expr, ref_frame_expr, unpack_refs
from plantwatch.core.decode.addr import is_group
from plantwatch.core.flows.schema import (
    _ST_ANSWERED,
    _ST_ATTEMPTED,
    _ST_CLOSED,
    _ST_ESTABLISHED,
    _ST_ONEWAY,
    _ST_REFUSED,
    _ST_RESET,
    _ST_UNANSWERED,
    _ST_UNREACHABLE,
    _STATE_MAP,
    ENDPOINTS,
    FAILED_STATES,
    ICS_PORTS,
    ONEWAY_UDP_PORTS,
    OP_STRUCT,
    SESSION_OPS,
    SESSIONS,
    STATE_ANSWERED,
    STATE_ATTEMPTED,
    STATE_CLOSED,
    STATE_ESTABLISHED,
    STATE_ONEWAY,
    STATE_REFUSED,
    STATE_RESET,
    STATE_UNANSWERED,
    STATE_UNREACHABLE,
    empty_sessions,
    make_ref,
    ref_file,
    ref_frame,
)
from plantwatch.core.flows.segments import _NS, SegmentCutter
from plantwatch.core.flows.stateful import Stateful
from plantwatch.core.flows.table import (
    _APPS_ACC,
    _EV,
    _FIRST,
    _KEEP,
    _OPEN_COLS,
    _OPS_ACC,
    _STR_SCHEMA,
    _SUM,
    _concat,
    _fold_ops,
    _OpenTable,
    _pick,
)

_ICS_ARR = np.array(sorted(ICS_PORTS), dtype=np.int64)


class SessionTracker(SegmentCutter, Stateful):
    """Turns decoded packet batches into sessions. Packet time only; deterministic."""

    STATE_VERSION = 1   # open sessions (a frame of the open table) and the side tables
    STATE_FRAMES = ("_open_saved", "_facts", "_apps", "_ops")
    STATE_SCALARS = ("_now", "_pos_base")

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

    def state_columns(self, name: str) -> dict[str, pl.DataType | None] | None:
        if name == "_open_saved":
            return dict.fromkeys(_OPEN_COLS)   # numpy columns, their types follow the data
        return super().state_columns(name)

    def _restore(self) -> None:
        """Load the open table from `_open_saved` after core/store/state.py restored it."""
        saved = self._open_saved
        if saved is not None and saved.height and self._open.n == 0:
            self._open.append({k: saved[k].to_numpy() for k in _OPEN_COLS})

    @property
    def now(self) -> int:
        return self._now

    # --- per batch: packets to segments ---------------------------------------------------

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
        # every slot, dead ones too (masked at the end): slices instead of ten gathers
        c = {k: o.cols[k][: o.size] for k in ("rst_a", "rst_b", "unreach", "dr_a", "dr_b", "fin_a",
                                             "fin_b", "proto", "last_pure_syn", "last_ts")}
        term = (((c["rst_a"] + c["rst_b"] + c["unreach"] + c["dr_a"] + c["dr_b"]) > 0)
                | ((c["fin_a"] > 0) & (c["fin_b"] > 0)))
        proto = c["proto"]
        idle = np.where(proto == 6, self.t_tcp, np.where(proto == 17, self.t_udp, self.t_icmp))
        limit = np.where(term, self.t_linger, np.where(c["last_pure_syn"], self.t_unans, idle))
        gone = np.flatnonzero(o.alive[: o.size] & ((self._now - c["last_ts"]) > limit))
        out = o.take(gone)
        o.remove(gone)
        return out

    def _finish(self, rows: dict[str, np.ndarray], final: bool, drop: bool) -> pl.DataFrame:
        """Open-table rows to the SESSIONS schema; `drop` forgets their side tables.

        `final`: the sessions ended before the end of input, so one still waiting for an answer
        is unanswered (at the end of input it stays attempted until the timeout passed)."""
        g = rows
        nrows = g["sid"].size
        ended = pl.Series(g["sid"]).implode()
        apps, self._apps = _split(self._apps, ended, drop)
        opsr, self._ops = _split(self._ops, ended, drop)
        facts = self._facts
        if facts.height:
            facts, self._facts = _split(facts, ended, drop)

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
            ts_, ta = _top_apps(apps["sid"].to_numpy(), apps["app"].to_numpy(), apps["n"].to_numpy())
            top = pl.DataFrame({"sid": ts_, "app": ta})   # a hash join: g's sids are not sorted
            app = pl.DataFrame({"sid": g["sid"]}).join(top, on="sid", how="left", maintain_order="left")[
                "app"].fill_null(0).to_numpy()

        fr, lr = g["first_ref"], g["last_ref"]
        cols: dict[str, np.ndarray | pl.Series] = {
            "session_id": g["sid"], "proto": proto.astype(np.uint8), "state": state.astype(np.uint8),
            "app": app, "client_hi": c_hi, "client_lo": c_lo, "client_port": c_pt,
            "server_hi": s_hi, "server_lo": s_lo, "server_port": s_pt,
            "client_mac": c_mac, "server_mac": s_mac, "vlan": g["vlan"],
            "first_ts": g["first_ts"], "last_ts": g["last_ts"], "pkts_c2s": p_c, "pkts_s2c": p_s,
            "bytes_c2s": b_c, "bytes_s2c": b_s, "payload_c2s": y_c, "payload_s2c": y_s,
            "first_file": unpack_refs(fr)[0], "first_frame": unpack_refs(fr)[1],
            "last_file": unpack_refs(lr)[0], "last_frame": unpack_refs(lr)[1],
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


def _split(frame: pl.DataFrame, sids: pl.Series, drop: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the rows of `frame` whose sid is in `sids`, the frame without them when `drop`)."""
    m = frame["sid"].is_in(sids)
    return frame.filter(m), frame.filter(~m) if drop else frame


def _top_apps(sid: np.ndarray, app: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each session's app with the most packets (ties: the lowest app), from (sid, app, n) rows
    that may repeat a pair: (sids ascending, their apps)."""
    order = np.lexsort((app, sid))
    sid, app, n = sid[order], app[order].astype(np.int64), n[order]
    pair = np.ones(sid.size, dtype=bool)
    pair[1:] = (sid[1:] != sid[:-1]) | (app[1:] != app[:-1])
    st = np.flatnonzero(pair)
    sid, app = sid[st], app[st]
    score = np.add.reduceat(n, st) * 256 + (255 - app)   # app is a uint8
    first = np.ones(sid.size, dtype=bool)
    first[1:] = sid[1:] != sid[:-1]
    st = np.flatnonzero(first)
    return sid[st], (255 - np.maximum.reduceat(score, st) % 256).astype(np.uint8)


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
        ref_capture_expr("first_ref").cast(pl.Int32).alias("first_file"),
        ref_frame_expr("first_ref").alias("first_frame"),
    ).cast(SESSION_OPS)


__all__ = ["SESSIONS", "SESSION_OPS", "SessionTracker", "session_ops", "make_ref", "ref_file",
           "ref_frame", "empty_sessions", "FAILED_STATES", "ENDPOINTS", "ICS_PORTS", "OP_STRUCT",
           "ONEWAY_UDP_PORTS", "STATE_ANSWERED", "STATE_ATTEMPTED", "STATE_CLOSED", "STATE_ESTABLISHED",
           "STATE_ONEWAY", "STATE_REFUSED", "STATE_RESET", "STATE_UNANSWERED", "STATE_UNREACHABLE"]
