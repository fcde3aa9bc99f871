"""The features the models read, declared once: frame, column, type and meaning.

core/detection/context.py derives them from the run's sessions, operations and volumes joined with
the baseline; `declared_frame` then keeps exactly the declared columns of each frame (checking
their types), so a model that reads a column nobody declared fails at once (polars'
ColumnNotFoundError) instead of quietly depending on an intermediate of the context builder.
Counts suffixed `_b` come from the baseline (0 when it never saw the key); `c` is the client
(the source of an operation), `s` the server.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    dtype: pl.DataType
    meaning: str


class FeatureError(ValueError):
    """A frame does not hold a declared feature with its declared type."""


_I, _S, _B, _F = pl.Int64(), pl.String(), pl.Boolean(), pl.Float64()

SESSION_FEATURES: tuple[Feature, ...] = (
    Feature("session_id", _I, "the session's id (sessions.session_id)"),
    Feature("first_ts", _I, "first packet, ns of packet time"),
    Feature("last_ts", _I, "last packet, ns of packet time"),
    Feature("c", _S, "client address as text"),
    Feature("s", _S, "server address as text"),
    Feature("port", pl.Int32(), "server port (0 when the transport has none)"),
    Feature("app", pl.UInt8(), "application protocol id (decode.schema.APP_NAMES)"),
    Feature("n_ops", _I, "ICS operations decoded in the session"),
    Feature("up", _I, "payload bytes client to server"),
    Feature("failed", _B, "refused, unanswered or unreachable"),
    Feature("ref", _I, "packed reference of the session's first packet (capture.refs)"),
    Feature("ev_tls", _I, "packed reference of the TLS ClientHello, if any"),
    Feature("ev_rdp", _I, "packed reference of the RDP connection request, if any"),
    Feature("tls_no_sni", _B, "a TLS ClientHello without server name"),
    Feature("self_signed", _B, "the server's certificate is self-signed"),
    Feature("cert_subject", _S, "the server certificate's subject (wire text)"),
    Feature("rdp_user", _S, "the RDP mstshash cookie user (wire text)"),
    Feature("c_ext", _B, "the client is external (internet)"),
    Feature("s_ext", _B, "the server is external (internet)"),
    Feature("s_group", _B, "the server address is broadcast or multicast"),
    Feature("c_ics", _B, "the client is an OT/ICS device (zones, inventory or baseline)"),
    Feature("s_ics", _B, "the server is an OT/ICS device (zones, inventory or baseline)"),
    Feature("c_it", _B, "the client is IT: by the zones, or internal and never spoke ICS"),
    Feature("c_immature", _B, "the client's baseline is still learning"),
    Feature("c_role", _S, "the client's role by behaviour (inventory: plc, hmi, engineering, ...)"),
    Feature("s_role", _S, "the server's role by behaviour"),
    Feature("edge_b", _I, "sessions on this (client, server, transport, port) in the baseline"),
    Feature("pair_b", _I, "sessions between this client and server in the baseline"),
    Feature("pair_obs_b", _I, "observations of this (client, server, service) in the baseline: sessions on "
            "the edge and ICS operations client -> server (its own maturity)"),
    Feature("c_app_b", _I, "sessions of the client with this application protocol"),
    Feature("c_ics_b", _I, "ICS sessions (ICS app or port) of the client"),
    Feature("c_failed_b", _I, "failed sessions of the client"),
    Feature("c_failed_ics_b", _I, "failed ICS sessions of the client"),
    Feature("s_prev_b", _I, "distinct clients of the server (its prevalence)"),
    Feature("s_srv_b", _I, "sessions the server served"),
    Feature("rdp_user_s_b", _I, "RDP sessions to the server with this cookie user"),
    Feature("s_rdp_users_b", _I, "distinct RDP users the server saw"),
    Feature("ja3_known", _B, "the client used this TLS fingerprint (JA3) while learning"),
    Feature("net_app_clients_b", _I, "devices of the network that were clients of this ICS app"),
    Feature("net_it_ot_b", _I, "IT -> OT sessions of the whole network"),
    Feature("net_nosni_b", _I, "TLS sessions without SNI to external servers, network-wide"),
)

OP_FEATURES: tuple[Feature, ...] = (
    Feature("session_id", _I, "the operation's session"),
    Feature("src", _S, "the address that sent the operation, as text"),
    Feature("dst", _S, "its target, as text"),
    Feature("app", pl.UInt8(), "application protocol id"),
    Feature("code", pl.Int32(), "protocol function code"),
    Feature("cls", pl.UInt8(), "operation class (decode.schema CLS_*: READ, DISCOVER, ACTION, ...)"),
    Feature("name", _S, "operation name"),
    Feature("count", _I, "how many times the session carried it"),
    Feature("ref", _I, "packed reference of its first packet"),
    Feature("first_ts", _I, "the session's first packet"),
    Feature("last_ts", _I, "the session's last packet"),
    Feature("key_b", _I, "this (src, dst, app, code, name) in the baseline"),
    Feature("pair_ops_b", _I, "operations src -> dst in the baseline (0: the source is new to the target)"),
    Feature("pair_reprogram_b", _I, "REPROGRAM operations src -> dst in the baseline"),
    Feature("src_discover_b", _I, "DISCOVER operations the source sent in the baseline"),
    Feature("src_action_b", _I, "ACTION operations the source sent in the baseline"),
    Feature("src_role", _S, "the source's role (inventory: engineering, hmi, plc, ...)"),
    Feature("src_immature", _B, "the source's baseline is still learning"),
    Feature("pair_obs_b", _I, "observations of the operation's session pair in the baseline (see S)"),
)

VOLUME_FEATURES: tuple[Feature, ...] = (
    Feature("c", _S, "client address as text"),
    Feature("s", _S, "server address as text"),
    Feature("port", pl.Int32(), "server port"),
    Feature("hour", _I, "hour of packet time (ns // 1h)"),
    Feature("measure", _S, "up (client to server) or down"),
    Feature("bytes", _I, "payload bytes in that hour and direction"),
    Feature("ref_kind", _S, "what the baseline compares with: pair, server port, server port and role (clients"
            " of that port on servers of the server's role), zone and role (clients of the source's zone kind"
            " and role), device (the most the source sent in an hour), or none"),
    Feature("s_role", _S, "the server's role by behaviour (inventory), null when unknown"),
    Feature("ref_max", _I, "largest hour of that reference in the baseline"),
    Feature("ref_mean", _F, "mean of log1p(bytes per hour) of the reference"),
    Feature("ref_sd", _F, "standard deviation of log1p(bytes per hour) of the reference"),
    Feature("floor", _I, "bytes under which no hour is unusual (relative to the network's volumes)"),
    Feature("c_immature", _B, "the client's baseline is still learning"),
    Feature("pair_hours_b", _F, "active hours of this pair and direction in the baseline (0 when none)"),
)

DEVICE_FEATURES: tuple[Feature, ...] = (
    Feature("device", _S, "the device's address (devices.device)"),
    Feature("name", _S, "its name, if the inventory learned one (wire text)"),
    Feature("vendor", _S, "vendor from the MAC's OUI"),
    Feature("first_ts", _I, "first seen, ns of packet time"),
    Feature("known", _B, "the baseline knows the device"),
    Feature("external", _B, "the device is external"),
)

ARP_FEATURES: tuple[Feature, ...] = (
    Feature("ts", _I, "the ARP request, ns of packet time"),
    Feature("sender", _S, "the address asking (sender protocol address), as text"),
    Feature("target", _S, "the address asked for (target protocol address), as text"),
    Feature("ref", _I, "packed reference of the request"),
    Feature("sender_router", _B, "the sender is a router (inventory): it ARPs for whatever it forwards to"),
)

FEATURES: dict[str, tuple[Feature, ...]] = {
    "S": SESSION_FEATURES, "ops": OP_FEATURES, "V": VOLUME_FEATURES, "D": DEVICE_FEATURES, "A": ARP_FEATURES,
}


def schema(frame: str) -> dict[str, pl.DataType]:
    return {f.name: f.dtype for f in FEATURES[frame]}


def declared_frame(frame: str, df: pl.DataFrame) -> pl.DataFrame:
    """`df` narrowed to the declared features of `frame`, in declaration order. An empty frame
    may lack columns (it gets the declared schema); a non-empty one must hold every declared
    column with its declared type."""
    want = schema(frame)
    if df.height == 0:
        return pl.DataFrame(schema=want)
    missing = [k for k in want if k not in df.columns]
    wrong = [f"{k} is {df.schema[k]}, declared {t}" for k, t in want.items()
             if k in df.columns and df.schema[k] != t]
    if missing or wrong:
        raise FeatureError(f"context frame {frame}: " + "; ".join(
            ([f"missing {', '.join(missing)}"] if missing else []) + wrong))
    return df.select(list(want))


__all__ = ["Feature", "FeatureError", "FEATURES", "SESSION_FEATURES", "OP_FEATURES",
           "VOLUME_FEATURES", "DEVICE_FEATURES", "ARP_FEATURES", "schema", "declared_frame"]
