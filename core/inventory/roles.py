"""Device roles inferred from behaviour, each with the reasons in words.

A role is a pure function of the accumulated counters (`infer_roles`). Whether a trusted role
(engineering, hmi) was earned by a device the plant already knew is a separate question:
`mark_unverified` marks the role of a device first seen after learning, or acting in an incident,
as unverified (`engineering?`), so no model discounts what a newcomer or an attacker earned.
"""

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

# roles that models trust (writes from them are expected at cold start)
TRUSTED_ROLES = (ROLE_ENGINEERING, ROLE_HMI)
# appended to a trusted role earned by a device new to the baseline or acting in an incident
UNVERIFIED = "?"

# A device serving this many distinct clients on non-ICS service ports is a server; with fewer
# (a historian serving one SCADA host) it is one when it answers at least as many sessions as
# it opens, or SERVER_MIN_SESSIONS of them (a client that keeps coming back, not one admin visit).
SERVER_MIN_CLIENTS = 3
SERVER_MIN_SESSIONS = 10
# Polling: on average this many READ operations per ICS device read from. A poller repeats
# the same reads every cycle; ten reads from a newcomer are no polling.
POLL_MIN_READS = 20
# DISCOVER operations are incidental to polling (an HMI reading a device id now and then) while
# they stay under 1/DISCOVER_INCIDENTAL of its reads; above that the diagnostics are a routine
# of their own (an engineering station reading SZLs between register reads).
DISCOVER_INCIDENTAL = 20


def infer_roles(d: pl.DataFrame) -> pl.DataFrame:
    """Role and reasons from accumulated counters only (a pure function of the frame).

    First match wins: external (global address, not on the local segment); router (its MAC
    sources many IPs or subnets); plc (answers sessions on an ICS port/protocol that carried
    operations); engineering (sent REPROGRAM, or DISCOVER operations that are not incidental to
    polling); hmi (polls: READ operations repeated to the ICS devices it reads); server (serves
    SERVER_MIN_CLIENTS clients on non-ICS service ports, or fewer while answering at least as many
    sessions as it opens or SERVER_MIN_SESSIONS of them); workstation (opened sessions); unknown.

    Needs the columns: zone_kind, is_router, ics_served, ics_clients, discover_ops, reprogram_ops,
    read_ops, ics_servers_read, server_clients, sessions_client, sessions_server (optional).
    """
    if "sessions_server" not in d.columns:
        d = d.with_columns(pl.lit(0, dtype=pl.Int64).alias("sessions_server"))
    served = pl.col("ics_served").list.join(", ")
    plc = pl.col("ics_clients") > 0
    polling = (pl.col("ics_servers_read") > 0) & (
        pl.col("read_ops") >= POLL_MIN_READS * pl.col("ics_servers_read"))
    incidental = pl.col("discover_ops") * DISCOVER_INCIDENTAL < pl.col("read_ops")
    eng = (pl.col("reprogram_ops") > 0) | ((pl.col("discover_ops") > 0) & ~(polling & incidental))
    hmi = polling
    server = (pl.col("server_clients") >= SERVER_MIN_CLIENTS) | (
        (pl.col("server_clients") > 0) & ((pl.col("sessions_server") >= pl.col("sessions_client"))
                                          | (pl.col("sessions_server") >= SERVER_MIN_SESSIONS)))
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
    reads = pl.format("{} READ operation(s) to {} ICS device(s)", pl.col("read_ops"), pl.col("ics_servers_read"))
    reasons = pl.concat_str([
        pl.when(pl.col("zone_kind") == "external").then(pl.lit("global address outside every zone; ")),
        pl.when(pl.col("is_router")).then(pl.lit("its MAC is the source of many IPs or subnets; ")),
        pl.when(plc).then(pl.format("serves {} to {} client(s) with ICS operations; ", served,
                                    pl.col("ics_clients"))),
        pl.when(eng & (pl.col("reprogram_ops") > 0)).then(pl.format(
            "sent {} REPROGRAM operation(s); ", pl.col("reprogram_ops"))),
        pl.when(eng & (pl.col("discover_ops") > 0)).then(pl.format(
            "sent {} DISCOVER operation(s) beside {} READ: diagnostics, not incidental to polling; ",
            pl.col("discover_ops"), pl.col("read_ops"))),
        pl.when(hmi).then(pl.format("polls: {} (at least {} per device); ", reads, pl.lit(POLL_MIN_READS))),
        pl.when(~hmi & (pl.col("read_ops") > 0)).then(pl.format("sent {}: too few to be polling; ", reads)),
        pl.when(server).then(pl.format("serves {} client(s) in {} session(s) on non-ICS service ports; ",
                                       pl.col("server_clients"), pl.col("sessions_server"))),
        pl.when(pl.col("sessions_client") > 0).then(pl.format("client of {} session(s); ",
                                                                pl.col("sessions_client"))),
    ], ignore_nulls=True).str.strip_chars_end("; ")
    return d.with_columns(role.alias("role"), reasons.alias("role_reasons"))


def mark_unverified(d: pl.DataFrame, why: dict[str, str]) -> pl.DataFrame:
    """The devices `d` (columns device, role, role_reasons) with the trusted role of every device
    in `why` (device -> the reason in words) shown as unverified: `engineering?`, and the reason
    first among its role reasons. Other roles and devices are returned as they are."""
    if not why or d.height == 0:
        return d
    w = pl.DataFrame({"device": list(why), "_why": list(why.values())}, schema={"device": pl.String(),
                                                                                 "_why": pl.String()})
    d = d.join(w, on="device", how="left")
    hit = pl.col("_why").is_not_null() & pl.col("role").is_in(list(TRUSTED_ROLES))
    return d.with_columns(
        pl.when(hit).then(pl.col("role") + UNVERIFIED).otherwise(pl.col("role")).alias("role"),
        pl.when(hit).then(pl.format("unverified: {}; {}", pl.col("_why"), pl.col("role_reasons")))
        .otherwise(pl.col("role_reasons")).alias("role_reasons")).drop("_why")


def is_trusted(role: pl.Expr) -> pl.Expr:
    """A verified trusted role (an unverified `engineering?` is not)."""
    return role.is_in(list(TRUSTED_ROLES))
