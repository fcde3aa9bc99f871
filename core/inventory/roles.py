"""Device roles inferred from behaviour, each with the reasons in words."""

from __future__ import annotations

import polars as pl

ROLE_PLC = "plc"
ROLE_HMI = "hmi"
ROLE_ENGINEERING = "engineering"
ROLE_SERVER = "server"
ROLE_WORKSTATION = "workstation"
ROLE_EXTERNAL = "external"
ROLE_ROUTER = "router"
ROLE_UNKNOWN = "unknown"

# A device serving this many distinct clients on non-ICS ports is a server.
SERVER_MIN_CLIENTS = 3


def infer_roles(d: pl.DataFrame) -> pl.DataFrame:
    """Role and reasons from accumulated counters only (a pure function of the frame).

    First match wins: external (global address, not on the local segment); router (its MAC
    sources many IPs or subnets); plc (answers sessions on an ICS port/protocol that carried
    operations); engineering (sent REPROGRAM, or at least as many DISCOVER as READ operations);
    hmi (sent READ operations to ICS servers); server (serves SERVER_MIN_CLIENTS clients on
    non-ICS ports); workstation (opened sessions); unknown.

    Needs the columns: zone_kind, is_router, ics_served, ics_clients, discover_ops, reprogram_ops,
    read_ops, ics_servers_read, server_clients, sessions_client, pkts_sent.
    """
    served = pl.col("ics_served").list.join(", ")
    plc = pl.col("ics_clients") > 0
    # DISCOVER makes an engineering station when it is not incidental to polling (an HMI reading
    # a device id now and then stays an HMI); any REPROGRAM does
    eng = (pl.col("reprogram_ops") > 0) | (
        (pl.col("discover_ops") > 0) & (pl.col("discover_ops") >= pl.col("read_ops")))
    hmi = (pl.col("read_ops") > 0) & (pl.col("ics_servers_read") > 0)
    server = pl.col("server_clients") >= SERVER_MIN_CLIENTS
    role = (
        pl.when(pl.col("zone_kind") == "external").then(pl.lit(ROLE_EXTERNAL))
        .when(pl.col("is_router")).then(pl.lit(ROLE_ROUTER))
        .when(plc).then(pl.lit(ROLE_PLC))
        .when(eng).then(pl.lit(ROLE_ENGINEERING))
        .when(hmi).then(pl.lit(ROLE_HMI))
        .when(server).then(pl.lit(ROLE_SERVER))
        .when(pl.col("sessions_client") > 0).then(pl.lit(ROLE_WORKSTATION))
        .otherwise(pl.lit(ROLE_UNKNOWN))
    )
    reasons = pl.concat_str([
        pl.when(pl.col("zone_kind") == "external").then(pl.lit("global address outside every zone; ")),
        pl.when(pl.col("is_router")).then(pl.lit("its MAC is the source of many IPs or subnets; ")),
        pl.when(plc).then(pl.format("serves {} to {} client(s) with ICS operations; ", served,
                                    pl.col("ics_clients"))),
        pl.when(eng).then(pl.format("sent {} DISCOVER and {} REPROGRAM operation(s); ",
                                    pl.col("discover_ops"), pl.col("reprogram_ops"))),
        pl.when(hmi).then(pl.format("sent {} READ operation(s) to {} ICS device(s); ",
                                    pl.col("read_ops"), pl.col("ics_servers_read"))),
        pl.when(server).then(pl.format("serves {} client(s) on non-ICS ports; ", pl.col("server_clients"))),
        pl.when(pl.col("sessions_client") > 0).then(pl.format("client of {} session(s); ",
                                                                pl.col("sessions_client"))),
    ], ignore_nulls=True).str.strip_chars_end("; ")
    return d.with_columns(role.alias("role"), reasons.alias("role_reasons"))
