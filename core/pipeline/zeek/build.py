"""Zeek logs to the frames the packet path builds: sessions (with their operations) and names.

Sessions are keyed by the Zeek uid: the session id is a 63-bit hash of it, so a connection seen
in several rotated files (its ICS lines in one, its conn.log line when it closes, in another)
is the same session, and re-reading the logs replaces rows instead of adding them. A uid with
ICS, ssl or rdp lines but no conn.log/open_conn.log line yet is an open session built from the
id fields of its lines (OT connections stay open for days; conn.log only has closed ones).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

from plantwatch.core.decode.ics import ICS_TCP_PORTS, ICS_UDP_PORTS
from plantwatch.core.decode.schema import APP_RDP, APP_TLS, DIR_REQUEST, PACKETS
from plantwatch.core.flows.sessions import OP_STRUCT, SESSIONS
from plantwatch.core.pipeline.zeek.conn import conn_records
from plantwatch.core.pipeline.zeek.facts import FACTS, name_packets, session_facts
from plantwatch.core.pipeline.zeek.icsops import OP_ROWS, op_rows
from plantwatch.core.pipeline.zeek.reader import ZeekLog, ts_ns

_MASK63 = (1 << 63) - 1
# conn.log-shaped logs of connections still open: open_conn (open-connections packages) and
# conn_long (zeek/long-connections); the latest record of a uid wins, its conn.log line over all
OPEN_CONN_LOGS = ("open_conn", "conn_long")
_UDP_ONLY = frozenset(ICS_UDP_PORTS - ICS_TCP_PORTS) | {53, 67, 68, 123, 137, 161}


@dataclass
class ZeekBatch:
    ended: pl.DataFrame     # SESSIONS: conn.log records
    open: pl.DataFrame      # SESSIONS: open_conn.log records and uids with no conn record yet
    ops: pl.DataFrame       # OP_ROWS (+ cls, name) of every ICS line
    names: pl.DataFrame     # PACKETS rows carrying dns/dhcp names only
    records: int            # log lines read


def uid_session_ids(uids: pl.Series) -> pl.Series:
    """The session id of each uid (deterministic across runs and machines)."""
    table = {u: int.from_bytes(hashlib.blake2b(u.encode(), digest_size=8).digest(), "big") & _MASK63
             for u in uids.unique().drop_nulls().to_list()}
    return uids.replace_strict(table, default=None, return_dtype=pl.Int64)


def _pseudo_conn(ops: pl.DataFrame, facts_ids: pl.DataFrame) -> pl.DataFrame:
    """conn.log-like rows for uids seen only in protocol logs: their first line's id fields; the
    responder 'sent' when any of its lines is from the responder."""
    rows = pl.concat([ops.select("uid", "ref", "ts", "is_orig", "orig_h", "orig_p", "resp_h", "resp_p"),
                      facts_ids], how="vertical_relaxed")
    if rows.height == 0:
        return pl.DataFrame()
    g = rows.sort("ref").group_by("uid", maintain_order=True).agg(
        pl.col("orig_h").first().alias("id.orig_h"), pl.col("orig_p").first().cast(pl.String).alias("id.orig_p"),
        pl.col("resp_h").first().alias("id.resp_h"), pl.col("resp_p").first().cast(pl.String).alias("id.resp_p"),
        pl.col("ts").min().alias("t0"), pl.col("ts").max().alias("t1"), pl.col("ref").min().alias("ref"),
        (pl.col("is_orig").fill_null(True)).sum().cast(pl.String).alias("orig_pkts"),
        (~pl.col("is_orig").fill_null(True)).sum().cast(pl.String).alias("resp_pkts"))
    resp_p = g["id.resp_p"].cast(pl.Int64, strict=False).fill_null(0)
    orig_p = g["id.orig_p"].cast(pl.Int64, strict=False).fill_null(0)
    udp = resp_p.is_in(list(_UDP_ONLY)) | orig_p.is_in(list(_UDP_ONLY))
    return g.with_columns(
        pl.Series("proto", ["udp" if u else "tcp" for u in udp.to_list()], pl.String),
        ((pl.col("t0") // 1000).cast(pl.String).str.pad_start(10, "0")
         .map_elements(lambda s: f"{s[:-6]}.{s[-6:]}", return_dtype=pl.String)).alias("ts"),
        ((pl.col("t1") - pl.col("t0")) / 1e9).cast(pl.String).alias("duration"),
        (pl.col("ref") % (1 << 32)).alias("_line"), (pl.col("ref") // (1 << 32)).alias("_file"))


def _op_structs(ops: pl.DataFrame, rec: pl.DataFrame) -> pl.DataFrame:
    """Per uid: n_ops, ev_op and the OP_STRUCT list, sides as the session names them."""
    if ops.height == 0:
        return pl.DataFrame(schema={"uid": pl.String, "n_ops": pl.Int64, "ev_op": pl.Int64,
                                    "ops": SESSIONS["ops"]})
    o = ops.join(rec.select("uid", "swapped"), on="uid", how="left").with_columns(
        (pl.col("is_orig").fill_null(pl.col("direction") == DIR_REQUEST)
         ^ pl.col("swapped").fill_null(False)).alias("from_client"),
        (pl.col("direction") == DIR_REQUEST).alias("requests"))
    per = o.group_by("uid", "app", "code", "cls", "name", "from_client", "requests").agg(
        pl.len().cast(pl.Int64).alias("count"), pl.col("exception").is_not_null().sum().cast(pl.Int64).alias("exceptions"),
        pl.col("ref").min().alias("first_ref"))
    per = per.sort("uid", "first_ref").select(
        "uid", pl.struct(*[pl.col(f.name).cast(f.dtype) for f in OP_STRUCT.fields]).alias("op"),
        "count", "first_ref")
    return per.group_by("uid", maintain_order=True).agg(
        pl.col("count").sum().alias("n_ops"), pl.col("first_ref").min().alias("ev_op"), pl.col("op").alias("ops"))


def _sessions(rec: pl.DataFrame, structs: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    if rec.height == 0:
        return pl.DataFrame(schema=SESSIONS)
    s = rec.join(structs, on="uid", how="left").join(facts, on="uid", how="left")
    top_app = pl.col("ops").list.eval(pl.element().struct.field("app")).list.first()
    s = s.with_columns(
        uid_session_ids(s["uid"]).alias("session_id"),
        pl.when(pl.col("app") != 0).then(pl.col("app"))
        .when(top_app.is_not_null()).then(top_app)
        .when(pl.col("ev_tls").is_not_null()).then(pl.lit(APP_TLS))
        .when(pl.col("ev_rdp").is_not_null()).then(pl.lit(APP_RDP))
        .otherwise(pl.col("app")).cast(pl.UInt8).alias("app"),
        (pl.col("ref") // (1 << 32)).cast(pl.Int32).alias("first_file"), (pl.col("ref") % (1 << 32)).alias("first_frame"),
        (pl.col("ref") // (1 << 32)).cast(pl.Int32).alias("last_file"), (pl.col("ref") % (1 << 32)).alias("last_frame"),
        pl.lit(0, pl.Int32).alias("icmp_errors"), pl.col("n_ops").fill_null(0),
        pl.col("ops").fill_null(pl.lit([], SESSIONS["ops"])))
    s = s.with_columns(pl.lit(None, dt).alias(c) for c, dt in SESSIONS.items() if c not in s.columns)
    return s.select(list(SESSIONS)).cast(SESSIONS)


def build(logs: list[tuple[ZeekLog, int]]) -> ZeekBatch:
    """Everything the logs say, as one batch ((log, file id) pairs; the file id is the
    `captures` row the evidence refs point at)."""
    ops = op_rows(logs)
    facts = session_facts(logs)
    closed, still = [], []
    for log, fid in logs:
        if log.name in ("conn", *OPEN_CONN_LOGS) and log.height and "uid" in log.frame.columns:
            is_open = log.name in OPEN_CONN_LOGS
            (still if is_open else closed).append(conn_records(log.frame, fid, still_open=is_open))
    ended = pl.concat(closed).unique("uid", keep="first", maintain_order=True) if closed else None
    opened = pl.concat(still).unique("uid", keep="last", maintain_order=True) if still else None
    if opened is not None and ended is not None:
        opened = opened.filter(~pl.col("uid").is_in(ended["uid"].implode()))
    known = pl.concat([x["uid"] for x in (ended, opened) if x is not None]) if (ended is not None or opened is not None) \
        else pl.Series("uid", [], pl.String)
    facts_ids = _fact_ids(logs)
    lone = _pseudo_conn(ops.filter(~pl.col("uid").is_in(known.implode())),
                        facts_ids.filter(~pl.col("uid").is_in(known.implode())))
    if lone.height:
        lone_rec = pl.concat([conn_records(part.drop("_file"), fid, still_open=True)
                              for (fid,), part in lone.partition_by("_file", as_dict=True).items()])
        opened = lone_rec if opened is None else pl.concat([opened, lone_rec])
    rec_all = pl.concat([x for x in (ended, opened) if x is not None]) if (ended is not None or opened is not None) \
        else None
    structs = _op_structs(ops, rec_all) if rec_all is not None else _op_structs(ops.clear(), ops.clear())
    return ZeekBatch(
        ended=_sessions(ended, structs, facts) if ended is not None else pl.DataFrame(schema=SESSIONS),
        open=_sessions(opened, structs, facts) if opened is not None else pl.DataFrame(schema=SESSIONS),
        ops=ops.join(pl.DataFrame({"uid": ops["uid"], "session_id": uid_session_ids(ops["uid"])}).unique("uid"),
                     on="uid", how="left"),
        names=name_packets([(log, fid) for log, fid in logs if log.name in ("dns", "dhcp")]),
        records=sum(log.height for log, _ in logs))


def _fact_ids(logs: list[tuple[ZeekLog, int]]) -> pl.DataFrame:
    """The id fields of ssl and rdp lines (sessions seen only through them)."""
    parts = []
    for log, fid in logs:
        f = log.frame
        if log.name in ("ssl", "rdp") and log.height and "id.orig_h" in f.columns:
            parts.append(f.select(
                pl.col("_key").alias("uid"), (pl.lit(fid << 32, pl.Int64) + pl.col("_line")).alias("ref"), ts_ns(),
                pl.lit(True).alias("is_orig"), pl.col("id.orig_h").alias("orig_h"),
                pl.col("id.orig_p").cast(pl.Int32, strict=False).alias("orig_p"),
                pl.col("id.resp_h").alias("resp_h"), pl.col("id.resp_p").cast(pl.Int32, strict=False).alias("resp_p")))
    schema = {k: OP_ROWS[k] for k in ("uid", "ref", "ts", "is_orig", "orig_h", "orig_p", "resp_h", "resp_p")}
    return pl.concat(parts).cast(schema) if parts else pl.DataFrame(schema=schema)


__all__ = ["ZeekBatch", "build", "uid_session_ids", "FACTS", "PACKETS"]
