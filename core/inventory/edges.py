"""What devices did with each other: session edges client -> server:port with their ICS
operations by class, and endpoint packet counters (from packets or from stored sessions)."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.ics import ICS_APPS, ICS_PORTS
from plantwatch.core.decode.schema import (
    APP_IEC104,
    APP_NAMES,
    CLS_ACTION,
    CLS_DISCOVER,
    CLS_READ,
    CLS_REPROGRAM,
)
from plantwatch.core.flows.segments import L2_FLOW, flow_addresses
from plantwatch.core.flows.sessions import ENDPOINTS, FAILED_STATES, session_ops

_EDGES = {"c_hi": pl.UInt64(), "c_lo": pl.UInt64(), "s_hi": pl.UInt64(), "s_lo": pl.UInt64(),
          "proto": pl.UInt8(), "port": pl.Int32(), "app": pl.UInt8(), "sessions": pl.Int64(),
          "ok": pl.Int64(), "failed": pl.Int64(), "ops": pl.Int64(), "read": pl.Int64(),
          "discover": pl.Int64(), "action": pl.Int64(), "reprogram": pl.Int64()}


# IANA's dynamic (ephemeral) range starts here
DYNAMIC_PORTS = 49152


def _empty(schema: dict) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def edges_from_sessions(sessions: pl.DataFrame) -> pl.DataFrame:
    """Sessions (plantwatch.core.flows.sessions.SESSIONS) to edge rows client -> server:port (_EDGES), one per
    session; _sum_edges folds them."""
    if sessions.height == 0:
        return _empty(_EDGES)
    so = session_ops(sessions)
    client = pl.col("from_client")
    # A session's reads are the client's READ requests, or in IEC 104 the monitor-direction data
    # (M_* types) the RTU sent when that is more: a 104 master asks for little (an interrogation now
    # and then) and the RTU reports spontaneously, by the standard's design. Elsewhere a server's
    # READ-class PDUs are answers (DNP3 responses, to writes too) and say nothing of polling.
    by_cls = so.group_by("session_id").agg(
        *[pl.col("count").filter(client & (pl.col("cls") == c)).sum().alias(n)
          for c, n in ((CLS_READ, "read"), (CLS_DISCOVER, "discover"), (CLS_ACTION, "action"),
                       (CLS_REPROGRAM, "reprogram"))],
        pl.col("count").filter(~client & (pl.col("cls") == CLS_READ) & (pl.col("app") == APP_IEC104))
        .sum().alias("reported"),
    ).with_columns(pl.max_horizontal("read", "reported").alias("read")).drop("reported")
    s = sessions.select(
        "session_id", pl.col("client_hi").alias("c_hi"), pl.col("client_lo").alias("c_lo"),
        pl.col("server_hi").alias("s_hi"), pl.col("server_lo").alias("s_lo"), "proto",
        pl.col("server_port").fill_null(0).alias("port"), "app", "state", "n_ops",
    ).join(by_cls, on="session_id", how="left")
    failed = pl.col("state").is_in(list(FAILED_STATES))
    return s.select(
        "c_hi", "c_lo", "s_hi", "s_lo", "proto", "port", "app", pl.lit(1).alias("sessions"),
        (~failed & (pl.col("state") != "attempted")).alias("ok"), failed.alias("failed"),
        pl.col("n_ops").alias("ops"),
        *[pl.col(k).fill_null(0) for k in ("read", "discover", "action", "reprogram")],
    ).cast(_EDGES)


def packet_endpoints(p: pl.DataFrame) -> pl.DataFrame:
    """ENDPOINTS counters straight from packets (when no SessionTracker.last_endpoints is given)."""
    ip = p.select(((pl.col("ip_ver").fill_null(0) > 0) | L2_FLOW).alias("flow"), *flow_addresses(),
                  "eth_src", "wirelen", "ts", "vlan").filter("flow")
    if ip.height == 0:
        return pl.DataFrame(schema=ENDPOINTS)
    src = ip.group_by(["src_hi", "src_lo", "eth_src"]).agg(
        pl.len().alias("pkts_sent"), pl.col("wirelen").sum().alias("bytes_sent"),
        pl.col("ts").min().alias("first_ts"), pl.col("ts").max().alias("last_ts"),
        pl.col("vlan").drop_nulls().first()).select(
        pl.col("src_hi").alias("hi"), pl.col("src_lo").alias("lo"), pl.col("eth_src").fill_null(0).alias("mac"),
        "pkts_sent", "bytes_sent", pl.lit(0).alias("pkts_recv"), pl.lit(0).alias("bytes_recv"),
        "first_ts", "last_ts", "vlan")
    dst = ip.group_by(["dst_hi", "dst_lo"]).agg(
        pl.len().alias("pkts_recv"), pl.col("wirelen").sum().alias("bytes_recv"),
        pl.col("ts").min().alias("first_ts"), pl.col("ts").max().alias("last_ts")).select(
        pl.col("dst_hi").alias("hi"), pl.col("dst_lo").alias("lo"), pl.lit(0).alias("mac"),
        pl.lit(0).alias("pkts_sent"), pl.lit(0).alias("bytes_sent"), "pkts_recv", "bytes_recv",
        "first_ts", "last_ts", pl.lit(None).alias("vlan"))
    return pl.concat([src.cast(ENDPOINTS), dst.cast(ENDPOINTS)])


def endpoints_from_sessions(sessions: pl.DataFrame) -> pl.DataFrame:
    """ENDPOINTS counters from stored sessions: each side's packets and bytes, MAC and VLAN."""
    def side(me: str, other: str, sent: str, recv: str) -> pl.DataFrame:
        return sessions.select(
            pl.col(f"{me}_hi").alias("hi"), pl.col(f"{me}_lo").alias("lo"),
            pl.col(f"{me}_mac").fill_null(0).alias("mac"),
            pl.col(f"pkts_{sent}").alias("pkts_sent"), pl.col(f"bytes_{sent}").alias("bytes_sent"),
            pl.col(f"pkts_{recv}").alias("pkts_recv"), pl.col(f"bytes_{recv}").alias("bytes_recv"),
            "first_ts", "last_ts", "vlan").cast(ENDPOINTS)
    return pl.concat([side("client", "server", "c2s", "s2c"), side("server", "client", "s2c", "c2s")])


def _sum_edges(e: pl.DataFrame) -> pl.DataFrame:
    keys = ["c_hi", "c_lo", "s_hi", "s_lo", "proto", "port", "app"]
    return e.group_by(keys).agg([pl.col(k).sum() for k in _EDGES if k not in keys]).select(list(_EDGES))


def with_edges(d: pl.DataFrame, e: pl.DataFrame) -> pl.DataFrame:
    """The devices `d` with their session counters from the edges `e` (as client, as server)."""
    zero = ["sessions_client", "sessions_server", "failed_client", "peers", "clients", "servers",
            "ics_clients", "ics_servers_read", "read_ops", "discover_ops", "action_ops",
            "reprogram_ops", "server_clients"]
    if e.height == 0:
        return d.with_columns([pl.lit(0, dtype=pl.Int64).alias(k) for k in zero] + [
            pl.lit([], dtype=pl.List(pl.String)).alias("ics_used"),
            pl.lit([], dtype=pl.List(pl.String)).alias("ics_served")])
    ics_app = pl.col("app").is_in(list(ICS_APPS))
    ics_port = pl.col("port").is_in(list(ICS_PORTS))
    names = {k: v for k, v in APP_NAMES.items() if k in ICS_APPS}
    app_name = pl.col("app").replace_strict(names, default=None, return_dtype=pl.String)
    as_client = e.group_by(["c_hi", "c_lo"]).agg(
        pl.col("sessions").sum().alias("sessions_client"),
        pl.col("failed").sum().alias("failed_client"),
        pl.struct("s_hi", "s_lo").n_unique().cast(pl.Int64).alias("servers"),
        pl.struct("s_hi", "s_lo").filter((pl.col("read") > 0) & (ics_app | ics_port)).n_unique()
        .cast(pl.Int64).alias("ics_servers_read"),
        pl.col("read").sum().alias("read_ops"), pl.col("discover").sum().alias("discover_ops"),
        pl.col("action").sum().alias("action_ops"), pl.col("reprogram").sum().alias("reprogram_ops"),
        app_name.filter(ics_app).drop_nulls().unique().sort().alias("ics_used"),
    ).rename({"c_hi": "hi", "c_lo": "lo"})
    served = pl.col("ok") > 0
    as_server = e.group_by(["s_hi", "s_lo"]).agg(
        pl.col("sessions").filter(served).sum().alias("sessions_server"),
        pl.struct("c_hi", "c_lo").filter(served).n_unique().cast(pl.Int64).alias("clients"),
        pl.struct("c_hi", "c_lo").filter(served & (ics_port | ics_app) & (pl.col("ops") > 0))
        .n_unique().cast(pl.Int64).alias("ics_clients"),
        # service ports only: a dynamic port answered (FTP data, RPC) makes no server
        pl.struct("c_hi", "c_lo").filter(served & ~ics_port & ~ics_app & (pl.col("port") > 0)
                                         & (pl.col("port") < DYNAMIC_PORTS)).n_unique().cast(pl.Int64)
        .alias("server_clients"),
        app_name.filter(served & ics_app & (pl.col("ops") > 0)).drop_nulls().unique().sort()
        .alias("ics_served"),
    ).rename({"s_hi": "hi", "s_lo": "lo"})
    both = pl.concat([e.select(pl.col("c_hi").alias("hi"), pl.col("c_lo").alias("lo"),
                               pl.col("s_hi").alias("p_hi"), pl.col("s_lo").alias("p_lo")),
                      e.filter(served).select(pl.col("s_hi").alias("hi"), pl.col("s_lo").alias("lo"),
                                              pl.col("c_hi").alias("p_hi"), pl.col("c_lo").alias("p_lo"))])
    peers = both.unique().group_by(["hi", "lo"]).agg(pl.len().cast(pl.Int64).alias("peers"))
    d = d.join(as_client, on=["hi", "lo"], how="left").join(as_server, on=["hi", "lo"], how="left").join(
        peers, on=["hi", "lo"], how="left")
    return d.with_columns([pl.col(k).fill_null(0).cast(pl.Int64) for k in zero] + [
        pl.col("ics_used").fill_null([]), pl.col("ics_served").fill_null([])])
