"""The context the models read: the run's kept sessions, operations and hourly volumes joined
with the baseline, and the devices of the run with their baseline flags.

Built once per detection (end of run, or a live checkpoint) by vectorised joins and group_bys; the
frames are then narrowed to the features declared in plantwatch.core.detection.features.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.capture.refs import ref_expr
from plantwatch.core.decode.addr import classify as addr_classify
from plantwatch.core.decode.addr import ip_texts
from plantwatch.core.decode.ics import ICS_APPS, ICS_PORTS
from plantwatch.core.decode.schema import CLS_ACTION, CLS_DISCOVER, CLS_REPROGRAM
from plantwatch.core.detection.baseline import Aggregates, Baseline
from plantwatch.core.detection.models.base import Context
from plantwatch.core.detection.peaks import LearnedPeaks
from plantwatch.core.flows.sessions import FAILED_STATES
from plantwatch.core.inventory.roles import mark_unverified
from plantwatch.core.inventory.zones import Zones

U = pl.UInt64()
NEW_DEVICE = "first seen after learning"

# the session columns the detector keeps of each batch (what the context is built from)
KEEP = ["session_id", "proto", "state", "app", "client_hi", "client_lo", "server_hi", "server_lo",
        "server_port", "first_ts", "last_ts", "payload_c2s", "payload_s2c", "n_ops", "first_file",
        "first_frame", "ev_syn", "ev_tls", "ev_rdp", "ev_op", "tls_no_sni", "tls_sni",
        "cert_self_signed", "cert_subject", "tls_ja3_hash", "rdp_cookie", "to_group"]


def _texts(hi: pl.Series, lo: pl.Series) -> pl.Series:
    return pl.Series(ip_texts(hi.to_numpy(), lo.to_numpy()), dtype=pl.String)


class ContextBuilder:
    """One detection's context from the detector's state (read only)."""

    def __init__(self, baseline: Baseline, zones: Zones, cfg: dict, agg: Aggregates,
                 kept: list[pl.DataFrame], ops: list[pl.DataFrame], titles: dict[str, str],
                 arp: list[pl.DataFrame] | None = None) -> None:
        self.baseline = baseline
        self.zones = zones
        self.cfg = cfg
        self.agg = agg
        self._kept = kept
        self._ops = ops
        self.titles = titles
        self._arp = arp or []

    def _devices(self, devices: pl.DataFrame | None) -> pl.DataFrame:
        """Devices of the run with zone kind, role and baseline flags."""
        bcfg = self.cfg["baseline"]
        mat = self.baseline.maturity(float(bcfg["device_min_hours"]), int(bcfg["device_min_sessions"]),
                                     float(bcfg["network_min_hours"]), int(bcfg["device_min_observations"]),
                                     int(bcfg["network_min_observations"])).select(
            pl.col("hi").cast(U), pl.col("lo").cast(U), "maturity")
        if devices is None or devices.height == 0:
            return pl.DataFrame(schema={"device": pl.String(), "hi": U, "lo": U, "name": pl.String(),
                                        "vendor": pl.String(), "zone_kind": pl.String(), "role": pl.String(),
                                        "first_ts": pl.Int64(), "ics": pl.Boolean(), "known": pl.Boolean(),
                                        "immature": pl.Boolean(), "external": pl.Boolean()})
        d = devices.filter(pl.col("hi").is_not_null()).select(
            "device", pl.col("hi").cast(U), pl.col("lo").cast(U), "name", "vendor", "zone_kind", "role",
            "first_ts", ((pl.col("zone_kind") == "ot") | (pl.col("ics_served").list.len() > 0)).alias("ics"))
        d = d.join(mat, on=["hi", "lo"], how="left")
        _, k0 = self.zones.classify(d["hi"].to_numpy(), d["lo"].to_numpy())
        d = d.with_columns(pl.Series("k0", k0.tolist(), dtype=pl.String))
        d = d.with_columns(_kind("zone_kind", "k0").alias("zone_kind")).drop("k0")
        d = d.with_columns(
            pl.col("maturity").is_not_null().alias("known"),
            (pl.col("maturity") == "learning").fill_null(False).alias("immature"),
            (pl.col("zone_kind") == "external").alias("external")).drop("maturity")
        # a trusted role earned by a device the baseline never saw is unverified: no model
        # discounts what a newcomer earned (with no baseline at all, nobody is new)
        if self.baseline.edges.height:
            new = d.filter(~pl.col("known") & ~pl.col("external"))["device"].to_list()
            d = mark_unverified(d.with_columns(pl.lit("").alias("role_reasons")),
                                dict.fromkeys(new, NEW_DEVICE)).drop("role_reasons")
        return d

    def build(self, devices: pl.DataFrame | None, cold: bool) -> Context:
        D = self._devices(devices)
        B = self.baseline
        be = B.edges
        S = pl.concat(self._kept) if self._kept else pl.DataFrame(schema={k: v for k, v in _session_schema().items()})
        S = S.unique("session_id", keep="last", maintain_order=True)
        S = S.rename({"client_hi": "c_hi", "client_lo": "c_lo", "server_hi": "s_hi", "server_lo": "s_lo"}).with_columns(
            pl.col("server_port").fill_null(0).alias("port"),
            pl.col("state").is_in(list(FAILED_STATES)).alias("failed"),
            ref_expr("first_file", "first_frame").alias("ref"),
            pl.col("tls_no_sni").fill_null(False), pl.col("cert_self_signed").fill_null(False).alias("self_signed"),
            pl.col("rdp_cookie").alias("rdp_user"), pl.col("tls_ja3_hash").alias("ja3"),
            pl.col("to_group").fill_null(False).alias("s_group"),
            pl.col("payload_c2s").alias("up"), pl.col("payload_s2c").alias("down"))
        S = S.with_columns(_texts(S["c_hi"], S["c_lo"]).alias("c"), _texts(S["s_hi"], S["s_lo"]).alias("s"))
        # zone kind: the inventory's when it knows the address, else the zones file / address class
        _, ck = self.zones.classify(S["c_hi"].to_numpy(), S["c_lo"].to_numpy())
        _, sk = self.zones.classify(S["s_hi"].to_numpy(), S["s_lo"].to_numpy())
        S = S.with_columns(pl.Series("c_kind0", ck.tolist(), dtype=pl.String),
                           pl.Series("s_kind0", sk.tolist(), dtype=pl.String))
        # ICS devices by the baseline: those that served or spoke an ICS protocol (PLCs, SCADA, EWS)
        ics_e = be.filter(pl.col("app").is_in(list(ICS_APPS)) & (pl.col("ok") > 0))
        ics_b = pl.concat([ics_e.select(pl.col("s_hi").alias("hi"), pl.col("s_lo").alias("lo")),
                           ics_e.select(pl.col("c_hi").alias("hi"), pl.col("c_lo").alias("lo"))]).unique().with_columns(
            pl.lit(True).alias("ics_b"))
        dd = D.select("hi", "lo", "zone_kind", "role", "ics", "known", "immature").join(
            ics_b, on=["hi", "lo"], how="full", coalesce=True)
        for side in ("c", "s"):
            S = S.join(dd.rename({"hi": f"{side}_hi", "lo": f"{side}_lo", "zone_kind": f"{side}_zk",
                                  "role": f"{side}_role", "ics": f"{side}_ics0", "known": f"{side}_known",
                                  "immature": f"{side}_immature", "ics_b": f"{side}_icsb"}),
                       on=[f"{side}_hi", f"{side}_lo"], how="left")
            S = S.with_columns(_kind(f"{side}_zk", f"{side}_kind0").alias(f"{side}_kind"))
            S = S.with_columns(
                (pl.col(f"{side}_ics0").fill_null(False) | pl.col(f"{side}_icsb").fill_null(False)
                 | (pl.col(f"{side}_kind") == "ot")).alias(f"{side}_ics"),
                pl.col(f"{side}_known").fill_null(False), pl.col(f"{side}_immature").fill_null(False),
                pl.col(f"{side}_role").fill_null("unknown"))
        S = S.with_columns(
            (pl.col("c_kind") == "external").alias("c_ext"), (pl.col("s_kind") == "external").alias("s_ext"),
            # IT: the zones say so, or (no zone) an internal device the baseline never saw speak ICS
            ((pl.col("c_kind") == "it")
             | ((pl.col("c_kind") == "internal") & ~pl.col("c_icsb").fill_null(False))).alias("c_it"))
        # baseline counts
        pair = ["c_hi", "c_lo", "s_hi", "s_lo"]
        ics_edge = pl.col("app").is_in(list(ICS_APPS)) | pl.col("port").is_in(list(ICS_PORTS))
        joins = [
            (be.group_by([*pair, "proto", "port"]).agg(pl.col("sessions").sum().alias("edge_b")), [*pair, "proto", "port"]),
            (be.group_by(pair).agg(pl.col("sessions").sum().alias("pair_b")), pair),
            (be.group_by(["c_hi", "c_lo", "app"]).agg(pl.col("sessions").sum().alias("c_app_b")), ["c_hi", "c_lo", "app"]),
            (be.group_by(["c_hi", "c_lo"]).agg(
                pl.col("sessions").filter(ics_edge).sum().alias("c_ics_b"), pl.col("failed").sum().alias("c_failed_b"),
                pl.col("failed").filter(ics_edge).sum().alias("c_failed_ics_b")), ["c_hi", "c_lo"]),
            (be.group_by(["s_hi", "s_lo"]).agg(
                pl.struct("c_hi", "c_lo").n_unique().cast(pl.Int64).alias("s_prev_b"),
                pl.col("sessions").sum().alias("s_srv_b")), ["s_hi", "s_lo"]),
        ]
        for frame, on in joins:
            S = S.join(frame, on=on, how="left")
        r = B.rdp
        S = S.join(r.group_by(["s_hi", "s_lo", "user"]).agg(pl.col("sessions").sum().alias("rdp_user_s_b")),
                   left_on=["s_hi", "s_lo", "rdp_user"], right_on=["s_hi", "s_lo", "user"], how="left")
        S = S.join(r.group_by(["s_hi", "s_lo"]).agg(pl.col("user").n_unique().cast(pl.Int64).alias("s_rdp_users_b")),
                   on=["s_hi", "s_lo"], how="left")
        S = S.join(B.ja3.select("c_hi", "c_lo", "ja3", pl.lit(True).alias("ja3_known")),
                   on=["c_hi", "c_lo", "ja3"], how="left")
        app_clients = be.filter(pl.col("app").is_in(list(ICS_APPS))).group_by("app").agg(
            pl.struct("c_hi", "c_lo").n_unique().cast(pl.Int64).alias("net_app_clients_b"))
        S = S.join(app_clients, on="app", how="left")
        S = S.with_columns(
            [pl.col(k).fill_null(0) for k in ("edge_b", "pair_b", "c_app_b", "c_ics_b", "c_failed_b",
                                             "c_failed_ics_b", "s_prev_b", "s_srv_b", "rdp_user_s_b",
                                             "s_rdp_users_b", "net_app_clients_b")]
            + [pl.col("ja3_known").fill_null(False)])
        # what the baseline observed of each (client, server, service): sessions on the edge and
        # ICS operations client -> server (core/detection/maturity.py judges pairs by it)
        pair_ops = B.ops.group_by(["src_hi", "src_lo", "dst_hi", "dst_lo"]).agg(pl.col("count").sum().alias("_po")).rename(
            {"src_hi": "c_hi", "src_lo": "c_lo", "dst_hi": "s_hi", "dst_lo": "s_lo"})
        S = S.join(pair_ops, on=pair, how="left").with_columns(
            (pl.col("edge_b") + pl.col("_po").fill_null(0)).alias("pair_obs_b"))
        # network-wide numbers quoted by explanations
        net_it_ot, net_nosni = self._network_numbers(D)
        S = S.with_columns(pl.lit(net_it_ot, pl.Int64).alias("net_it_ot_b"),
                           pl.lit(net_nosni, pl.Int64).alias("net_nosni_b"))
        ops = self._ops_context(S)
        V = self._volume_context(S, D)
        return Context(S=S, ops=ops, V=V, D=D, cfg=self.cfg, hours_b=self.baseline.hours(), cold=cold,
                       titles=self.titles, A=self._arp_context(D),
                       peaks=LearnedPeaks.from_config(B.peaks, self.cfg))

    def _arp_context(self, D: pl.DataFrame) -> pl.DataFrame:
        if not self._arp:
            return pl.DataFrame()
        a = pl.concat(self._arp).unique(["arp_spa", "arp_tpa"], keep="first", maintain_order=True)
        spa, tpa = a["arp_spa"].to_numpy(), a["arp_tpa"].to_numpy()
        zero = np.zeros(a.height, dtype=np.uint64)
        mapped = np.uint64(0xFFFF << 32)
        a = a.with_columns(pl.Series("sender", ip_texts(zero, spa | mapped), dtype=pl.String),
                           pl.Series("target", ip_texts(zero, tpa | mapped), dtype=pl.String),
                           ref_expr("file_id", "frame").alias("ref"))
        routers = D.filter(pl.col("role") == "router").select(pl.col("device").alias("sender"),
                                                              pl.lit(True).alias("sender_router"))
        return a.join(routers, on="sender", how="left").with_columns(pl.col("sender_router").fill_null(False))

    def _network_numbers(self, D: pl.DataFrame) -> tuple[int, int]:
        be = self.baseline.edges
        if be.height == 0:
            return 0, 0
        _, ck = self.zones.classify(be["c_hi"].to_numpy(), be["c_lo"].to_numpy())
        _, sk = self.zones.classify(be["s_hi"].to_numpy(), be["s_lo"].to_numpy())
        it_ot = int(be.filter(pl.Series((ck == "it") & (sk == "ot")))["sessions"].sum())
        ext = addr_classify(be["s_hi"].to_numpy(), be["s_lo"].to_numpy()) == 0
        nosni = int(be.filter(pl.Series(ext))["nosni"].sum())
        return it_ot, nosni

    def _ops_context(self, S: pl.DataFrame) -> pl.DataFrame:
        ops = pl.concat(self._ops) if self._ops else None
        if ops is None or ops.height == 0:
            return pl.DataFrame(schema={"session_id": pl.Int64(), "src": pl.String(), "dst": pl.String(),
                                        "app": pl.UInt8(), "code": pl.Int32(), "cls": pl.UInt8(),
                                        "name": pl.String(), "count": pl.Int64(), "ref": pl.Int64(),
                                        "first_ts": pl.Int64(), "last_ts": pl.Int64(), "key_b": pl.Int64(),
                                        "pair_ops_b": pl.Int64(), "pair_reprogram_b": pl.Int64(), "src_discover_b": pl.Int64(),
                                        "src_action_b": pl.Int64(), "src_role": pl.String(),
                                        "src_immature": pl.Boolean(), "pair_obs_b": pl.Int64()})
        ops = ops.unique(["session_id", "app", "code", "cls", "name", "from_client", "requests"], keep="last")
        # the sender is the client, or the server for what it pushed (from_client false)
        fc = pl.col("from_client")
        o = ops.join(S.select("session_id", "c", "s", "first_ts", "last_ts", "port", "c_role", "s_role",
                              "c_immature", "s_immature", "pair_obs_b"), on="session_id", how="inner").with_columns(
            pl.when(fc).then(pl.col("c")).otherwise(pl.col("s")).alias("src"),
            pl.when(fc).then(pl.col("s")).otherwise(pl.col("c")).alias("dst"),
            pl.when(fc).then(pl.col("c_role")).otherwise(pl.col("s_role")).alias("src_role"),
            pl.when(fc).then(pl.col("c_immature")).otherwise(pl.col("s_immature")).alias("src_immature"),
        ).drop("c", "s", "c_role", "s_role", "c_immature", "s_immature")
        o = o.with_columns(ref_expr("first_file", "first_frame").alias("ref"))
        bo = self.baseline.ops
        key = ["src_hi", "src_lo", "dst_hi", "dst_lo", "app", "code", "name"]
        o = o.join(bo.group_by(key).agg(pl.col("count").sum().alias("key_b")), on=key, how="left")
        o = o.join(bo.group_by(["src_hi", "src_lo", "dst_hi", "dst_lo"]).agg(pl.col("count").sum().alias("pair_ops_b")),
                   on=["src_hi", "src_lo", "dst_hi", "dst_lo"], how="left")
        o = o.join(bo.filter(pl.col("cls") == CLS_REPROGRAM).group_by(["src_hi", "src_lo", "dst_hi", "dst_lo"]).agg(
            pl.col("count").sum().alias("pair_reprogram_b")), on=["src_hi", "src_lo", "dst_hi", "dst_lo"], how="left")
        o = o.join(bo.group_by(["src_hi", "src_lo"]).agg(
            pl.col("count").filter(pl.col("cls") == CLS_DISCOVER).sum().alias("src_discover_b"),
            pl.col("count").filter(pl.col("cls") == CLS_ACTION).sum().alias("src_action_b")),
            on=["src_hi", "src_lo"], how="left")
        return o.with_columns([pl.col(k).fill_null(0) for k in ("key_b", "pair_ops_b", "pair_reprogram_b", "src_discover_b",
                                                                 "src_action_b")])

    def _volume_context(self, S: pl.DataFrame, D: pl.DataFrame) -> pl.DataFrame:
        """Hours of the run whose bytes pass the network's floor, each with the nearest reference
        the baseline holds: the pair, else any client of the server's port, else any client of
        that port on servers of the server's role, else the clients of the source's zone kind and role, else what the source itself ever sent in an hour."""
        bv = self.baseline.vol
        floor = volume_floor(bv, self.cfg["net.data_volume"])
        vh = self.agg.frames()["vol_hours"].filter((pl.col("up") >= floor) | (pl.col("down") >= floor))
        if vh.height == 0:
            return pl.DataFrame()
        long = pl.concat([
            vh.select("c_hi", "c_lo", "s_hi", "s_lo", "port", "hour", pl.lit("up").alias("measure"), pl.col("up").alias("bytes")),
            vh.select("c_hi", "c_lo", "s_hi", "s_lo", "port", "hour", pl.lit("down").alias("measure"), pl.col("down").alias("bytes")),
        ]).filter(pl.col("bytes") >= floor)

        def stats(df: pl.DataFrame, prefix: str) -> pl.DataFrame:
            mean = pl.col("slog") / pl.col("hours")
            var = (pl.col("slog2") / pl.col("hours") - mean * mean).clip(lower_bound=0)
            return df.select(*[c for c in df.columns if c not in ("hours", "max", "slog", "slog2")],
                             pl.col("hours").alias(f"{prefix}_hours"), pl.col("max").alias(f"{prefix}_max"),
                             mean.alias(f"{prefix}_mean"), var.sqrt().alias(f"{prefix}_sd"))

        def pooled(df: pl.DataFrame, by: list[str]) -> pl.DataFrame:
            # one summation order per key, whatever order the rows came in (floats: see vol_stats)
            return df.sort([*by, "slog", "slog2", "hours", "max"]).group_by(by).agg(pl.col("hours").sum(), pl.col("max").max(), pl.col("slog").sum(),
                                       pl.col("slog2").sum())

        roles = D.select("hi", "lo", "zone_kind", "role")
        bvr = bv.join(roles.rename({"hi": "c_hi", "lo": "c_lo"}), on=["c_hi", "c_lo"], how="left")
        pair = stats(bv, "p")
        srv = stats(pooled(bv, ["s_hi", "s_lo", "port", "measure"]), "q")
        # the clients of every server of that role on that port (a file server nobody used
        # before is compared with the plant's other file servers)
        s_roles = roles.select(pl.col("hi").alias("s_hi"), pl.col("lo").alias("s_lo"), pl.col("role").alias("s_role"))
        psr = stats(pooled(bv.join(s_roles, on=["s_hi", "s_lo"], how="inner"), ["port", "s_role", "measure"]), "r")
        pop = stats(pooled(bvr.filter(pl.col("role").is_not_null()), ["zone_kind", "role", "measure"]), "z")
        # a zone kind and role the baseline knows devices of, none of which ever moved such bytes
        # as a client (field devices do not send files): its largest hour is 0
        known = D.filter(pl.col("known")).select("zone_kind", "role").unique().join(
            pl.DataFrame({"measure": ["up", "down"]}), how="cross")
        pop = known.join(pop, on=["zone_kind", "role", "measure"], how="full", coalesce=True).with_columns(
            pl.col("z_hours").fill_null(0.0), pl.col("z_max").fill_null(0), pl.col("z_mean").fill_null(0.0),
            pl.col("z_sd").fill_null(0.0))
        # what a device sent in its largest hour as client (up) or as server (down)
        own = pl.concat([bv.filter(pl.col("measure") == "up").select(pl.col("c_hi").alias("hi"), pl.col("c_lo").alias("lo"), "max"),
                         bv.filter(pl.col("measure") == "down").select(pl.col("s_hi").alias("hi"), pl.col("s_lo").alias("lo"), "max")]
                        ).group_by("hi", "lo").agg(pl.col("max").max().alias("o_max"))
        v = long.join(pair, on=["c_hi", "c_lo", "s_hi", "s_lo", "port", "measure"], how="left").join(
            srv, on=["s_hi", "s_lo", "port", "measure"], how="left")
        v = v.join(s_roles, on=["s_hi", "s_lo"], how="left").join(psr, on=["port", "s_role", "measure"], how="left")
        v = v.join(roles.rename({"hi": "c_hi", "lo": "c_lo"}), on=["c_hi", "c_lo"], how="left").join(
            pop, on=["zone_kind", "role", "measure"], how="left")
        sender = pl.when(pl.col("measure") == "up")
        v = v.with_columns(sender.then(pl.col("c_hi")).otherwise(pl.col("s_hi")).alias("hi"),
                           sender.then(pl.col("c_lo")).otherwise(pl.col("s_lo")).alias("lo")).join(
            own, on=["hi", "lo"], how="left")
        # the pair is a reference once it holds enough active hours: a pair seen in one quiet hour
        # says little, and the clients of its server's port (pooled) speak instead
        min_h = float(self.cfg["net.data_volume"]["min_reference_hours"])
        chain = (("pair", "p"), ("server port", "q"), ("server port and role", "r"), ("zone and role", "z"))
        kind = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
        mx = mean = sd = pl.when(pl.lit(False)).then(pl.lit(None, pl.Float64))
        for name, pre in chain:
            has = pl.col(f"{pre}_hours").is_not_null()
            if pre == "p":
                has = has & (pl.col(f"{pre}_hours") >= min_h)
            kind = kind.when(has).then(pl.lit(name))
            mx, mean, sd = (mx.when(has).then(pl.col(f"{pre}_max")), mean.when(has).then(pl.col(f"{pre}_mean")),
                            sd.when(has).then(pl.col(f"{pre}_sd")))
        has_own = pl.col("o_max").is_not_null()
        v = v.with_columns(
            kind.when(has_own).then(pl.lit("device")).otherwise(None).alias("ref_kind"),
            mx.when(has_own).then(pl.col("o_max")).otherwise(None).cast(pl.Int64).alias("ref_max"),
            mean.when(has_own).then(pl.col("o_max").cast(pl.Float64).log1p()).otherwise(None).alias("ref_mean"),
            sd.when(has_own).then(pl.lit(0.0)).otherwise(None).alias("ref_sd"),
            pl.lit(int(floor), pl.Int64).alias("floor"),
            pl.col("p_hours").cast(pl.Float64).fill_null(0.0).alias("pair_hours_b"))
        v = v.with_columns(_texts(v["c_hi"], v["c_lo"]).alias("c"), _texts(v["s_hi"], v["s_lo"]).alias("s"))
        imm = S.select("c", "c_immature").unique("c")
        return v.join(imm, on="c", how="left").with_columns(pl.col("c_immature").fill_null(False))


def volume_floor(bv: pl.DataFrame, c: dict) -> float:
    """The byte count under which no hour is unusual: `floor_factor` times the network's typical
    pair-hour (geometric mean over every pair and direction learned), never under `min_bytes`."""
    hours = float(bv["hours"].sum()) if bv.height else 0.0
    typical = float(np.expm1(float(bv["slog"].sum()) / hours)) if hours > 0 else 0.0
    return max(float(c["min_bytes"]), float(c["floor_factor"]) * typical)


def _kind(inventory: str, by_address: str) -> pl.Expr:
    """Zone kind of an address: the inventory's when it knows the address (it has seen its MAC
    and VLAN), else what the zones file and the address class say."""
    return pl.coalesce(pl.col(inventory), pl.col(by_address))


def _session_schema() -> dict[str, pl.DataType]:
    from plantwatch.core.flows.sessions import SESSIONS

    return {k: SESSIONS[k] for k in KEEP}
