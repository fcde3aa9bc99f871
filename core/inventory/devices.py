"""The device inventory: identity, names, vendor, zone, inferred role and counters.

A device is an IP address that sent at least one packet (multicast, broadcast, loopback and
0.0.0.0 are never devices). Its MAC is attached only when the MAC is local to it: a MAC seen as the source
of many IPs, or of IPs in several subnets, belongs to a router or gateway and is not merged into
the hosts behind it; the router itself is the device ARP binds to that MAC (or, with no ARP seen,
a MAC-only device). Names come from DNS answers (the name the network resolves to the address),
DHCP host names (bound by client MAC and requested IP) and NetBIOS name responses.

Per batch, `update` aggregates with group_by into small accumulated tables (per IP and MAC, per
destination IP, ARP bindings, names, and the session edges client -> server:port). `devices()`
derives the DEVICES frame from those tables; `infer_roles` is a pure function of the counters, so
the inventory can be rebuilt from stored sessions (`DeviceInventory.from_sessions`).

Sessions: pass the sessions that ended in the batch (SessionTracker.update's result, and
flush()'s at the end); optionally also the tracker's `open_sessions()` as `open_sessions`, a
transient overlay replaced on every call (so long-lived polling connections count before they
end, and nothing is counted twice).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import addr
from plantwatch.core.flows.sessions import ENDPOINTS
from plantwatch.core.flows.stateful import ComponentState, Stateful
from plantwatch.core.inventory import oui
from plantwatch.core.inventory.changes import Touched
from plantwatch.core.inventory.edges import (
    _EDGES,
    ICS_APPS,
    _empty,
    _sum_edges,
    edges_from_sessions,
    endpoints_from_sessions,
    packet_endpoints,
    with_edges,
)
from plantwatch.core.inventory.names import _MACNAMES, _NAMES, packet_names, with_names
from plantwatch.core.inventory.roles import (
    ROLE_ENGINEERING,
    ROLE_EXTERNAL,
    ROLE_HMI,
    ROLE_PLC,
    ROLE_ROUTER,
    ROLE_SERVER,
    ROLE_UNKNOWN,
    ROLE_WORKSTATION,
    SERVER_MIN_CLIENTS,
    infer_roles,
)
from plantwatch.core.inventory.zones import EXTERNAL, INTERNAL, Zones

# A MAC that sources this many IPs, or IPs of two subnets (/24 IPv4, /64 IPv6, link-local
# excluded), is a router's.
ROUTER_MIN_IPS = 8
# Pending rows folded into the tables once this many have piled up.
FOLD_ROWS = 1_000_000

DEVICES: dict[str, pl.DataType] = {
    "device": pl.String(),        # the key: IP text, or MAC text for a MAC-only router
    "hi": pl.UInt64(), "lo": pl.UInt64(),  # null for a MAC-only device
    "ip": pl.String(),
    "mac": pl.UInt64(),           # the device's own MAC (null when unknown or behind a router)
    "vendor": pl.String(),        # OUI vendor of `mac`
    "name": pl.String(), "name_source": pl.String(),  # dns | dhcp | nbns
    "names": pl.List(pl.String()),
    "zone": pl.String(), "zone_kind": pl.String(),    # it | ot | dmz | internal | external (a
    # global address seen with a MAC of its own is internal: it is on the local segment)
    "vlan": pl.Int32(),
    "role": pl.String(),          # plc hmi engineering server workstation external router unknown
    # (a trusted role earned by a device new to the baseline or acting in an incident carries
    # roles.UNVERIFIED: `engineering?`)
    "role_reasons": pl.String(),  # why, in words ("; " separated)
    "first_ts": pl.Int64(), "last_ts": pl.Int64(),    # first/last packet sent or received (ns)
    "pkts_sent": pl.Int64(), "pkts_recv": pl.Int64(),
    "bytes_sent": pl.Int64(), "bytes_recv": pl.Int64(),
    "sessions_client": pl.Int64(), "sessions_server": pl.Int64(),
    "failed_client": pl.Int64(),  # its sessions as client that were refused/unanswered/unreachable
    "peers": pl.Int64(),          # distinct addresses it had sessions with
    "clients": pl.Int64(),        # distinct clients it served (any port)
    "servers": pl.Int64(),        # distinct servers it used
    "ics_used": pl.List(pl.String()),    # ICS protocols it spoke as client
    "ics_served": pl.List(pl.String()),  # ICS protocols it served (answered sessions)
    "ics_clients": pl.Int64(),    # distinct clients of its ICS services with ops
    "ics_servers_read": pl.Int64(),  # distinct ICS servers it sent READ ops to
    "read_ops": pl.Int64(), "discover_ops": pl.Int64(), "action_ops": pl.Int64(),
    "reprogram_ops": pl.Int64(),  # ICS operations it sent as client, by class
    "server_clients": pl.Int64(), # distinct clients it served on non-ICS service ports
    "is_router": pl.Boolean(),
}

_SRC = {"hi": pl.UInt64(), "lo": pl.UInt64(), "mac": pl.UInt64(), "pkts": pl.Int64(),
        "bytes": pl.Int64(), "first_ts": pl.Int64(), "last_ts": pl.Int64(), "vlan": pl.Int32()}
_DST = {"hi": pl.UInt64(), "lo": pl.UInt64(), "pkts": pl.Int64(), "bytes": pl.Int64(),
        "first_ts": pl.Int64(), "last_ts": pl.Int64()}
_BIND = {"hi": pl.UInt64(), "lo": pl.UInt64(), "mac": pl.UInt64(), "n": pl.Int64()}


class DeviceInventory(Stateful):
    STATE_VERSION = 1
    STATE_FRAMES = ("_src", "_dst", "_arp", "_names", "_macnames", "_edges", "_open_sessions",
                    "_pend_ep", "_pend_edges")
    STATE_SCALARS = ("_pend_rows",)

    def __init__(self, zones: Zones | None = None, oui_table: oui.OuiTable | None = None) -> None:
        self.zones = zones or Zones.default()
        self._oui = oui_table
        self._src = _empty(_SRC)
        self._dst = _empty(_DST)
        self._arp = _empty(_BIND)
        self._names = _empty(_NAMES)
        self._macnames = _empty(_MACNAMES)
        self._edges = _empty(_EDGES)
        self._open_sessions: pl.DataFrame | None = None
        # rows not folded yet: folding (a group_by over the whole table) happens when they pile
        # up or when devices() is asked, not on every batch
        # (frames, not lists, so core/store/state.py can save them between runs)
        self._pend_ep = pl.DataFrame(schema=ENDPOINTS)
        self._pend_edges = _empty(_EDGES)
        self._pend_rows = 0
        self.touched = Touched()   # what was fed since the devices were last written (not state)

    # --- feeding ----------------------------------------------------------------------------

    def update(self, packets: pl.DataFrame, ops: pl.DataFrame | None = None,
               sessions: pl.DataFrame | None = None,
               open_sessions: pl.DataFrame | None = None,
               endpoints: pl.DataFrame | None = None) -> None:
        """One batch. `endpoints`: the tracker's `last_endpoints` for this batch (much cheaper
        than grouping every packet again; without it the packets are grouped here)."""
        if packets.height:
            self._add_packets(packets, endpoints)
        if sessions is not None and sessions.height:
            self.add_sessions(sessions)
        if open_sessions is not None:
            self.touched.overlay(self._open_sessions, open_sessions)
            self._open_sessions = open_sessions
        if self._pend_rows > FOLD_ROWS:
            self._fold()

    @classmethod
    def from_sessions(cls, sessions: pl.DataFrame, zones: Zones | None = None) -> DeviceInventory:
        """Rebuild the inventory from stored sessions alone (no names: they come from packets)."""
        inv = cls(zones)
        inv.add_endpoints(endpoints_from_sessions(sessions))
        inv.add_sessions(sessions)
        return inv

    def add_sessions(self, sessions: pl.DataFrame) -> None:
        """Count ended sessions (edges, roles). Their packet counters come from endpoints."""
        self.touched.sessions(sessions)
        e = edges_from_sessions(sessions)
        if e.height:
            self._pend_edges = pl.concat([self._pend_edges, e], rechunk=False)
            self._pend_rows += e.height

    def _fold(self) -> None:
        if self._pend_edges.height:
            self._edges = _sum_edges(pl.concat([self._edges, self._pend_edges]))
            self._pend_edges = self._pend_edges.clear()
        if self._pend_ep.height:
            self._fold_endpoints(self._pend_ep)
            self._pend_ep = self._pend_ep.clear()
        self._pend_rows = 0

    def _add_packets(self, p: pl.DataFrame, endpoints: pl.DataFrame | None = None) -> None:
        if endpoints is None:
            endpoints = packet_endpoints(p)
        self.add_endpoints(endpoints)
        self._add_arp(p)
        self._add_names(p)

    def add_endpoints(self, e: pl.DataFrame) -> None:
        """Per-batch endpoint counters (plantwatch.core.flows.sessions.ENDPOINTS), folded in later."""
        if e.height:
            self.touched.addresses(e)
            self._pend_ep = pl.concat([self._pend_ep, e.cast(ENDPOINTS)], rechunk=False)
            self._pend_rows += e.height

    def _fold_endpoints(self, e: pl.DataFrame) -> None:
        src = e.filter(pl.col("pkts_sent") > 0).group_by(["hi", "lo", "mac"]).agg(
            pl.col("pkts_sent").sum().alias("pkts"), pl.col("bytes_sent").sum().alias("bytes"),
            pl.col("first_ts").min(), pl.col("last_ts").max(), pl.col("vlan").drop_nulls().first())
        if src.height:
            h, lo = src["hi"].to_numpy(), src["lo"].to_numpy()
            # a stray loopback frame on the wire is no device either
            src = src.filter(~pl.Series(addr.is_group(h, lo) | (addr.classify(h, lo) == addr.KIND_LOOPBACK)))
            self._src = pl.concat([self._src, src.select(list(_SRC)).cast(_SRC)]).group_by(
                ["hi", "lo", "mac"]).agg(
                pl.col("pkts").sum(), pl.col("bytes").sum(), pl.col("first_ts").min(),
                pl.col("last_ts").max(), pl.col("vlan").drop_nulls().first()).select(list(_SRC))
        dst = e.filter(pl.col("pkts_recv") > 0).group_by(["hi", "lo"]).agg(
            pl.col("pkts_recv").sum().alias("pkts"), pl.col("bytes_recv").sum().alias("bytes"),
            pl.col("first_ts").min(), pl.col("last_ts").max())
        if dst.height:
            self._dst = pl.concat([self._dst, dst.select(list(_DST)).cast(_DST)]).group_by(
                ["hi", "lo"]).agg(pl.col("pkts").sum(), pl.col("bytes").sum(),
                                  pl.col("first_ts").min(), pl.col("last_ts").max()).select(list(_DST))

    def _add_arp(self, p: pl.DataFrame) -> None:
        if "arp_sha" not in p.columns or p["arp_sha"].null_count() == p.height:
            return
        a = p.select("arp_spa", "arp_sha").filter(pl.col("arp_sha").is_not_null() & pl.col("arp_spa").is_not_null()
                     & (pl.col("arp_spa") != 0))
        if a.height == 0:
            return
        b = a.group_by(["arp_spa", "arp_sha"]).agg(pl.len().cast(pl.Int64).alias("n")).select(
            pl.lit(0, dtype=pl.UInt64).alias("hi"),
            ((pl.col("arp_spa").cast(pl.UInt64) & 0xFFFFFFFF) | (0xFFFF << 32)).cast(pl.UInt64).alias("lo"),
            pl.col("arp_sha").alias("mac"), "n")
        self.touched.addresses(b)
        self._arp = pl.concat([self._arp, b.cast(_BIND)]).group_by(["hi", "lo", "mac"]).agg(
            pl.col("n").sum()).select(list(_BIND))

    def _add_names(self, p: pl.DataFrame) -> None:
        new, macnames = packet_names(p)
        for n in new:
            self.touched.addresses(n)
        if macnames is not None:
            self.touched.macs(macnames["mac"])
            self._macnames = pl.concat([self._macnames, macnames]).unique(
                ["mac", "name"], keep="first", maintain_order=True)
        if new:
            self._names = pl.concat([self._names, *new]).unique(
                ["hi", "lo", "name", "source"], keep="first", maintain_order=True)

    def router_macs(self) -> pl.DataFrame:
        """MACs that source many IPs or IPs of several subnets: (mac, n_ips)."""
        self._fold()
        s = self._src.filter(pl.col("mac") != 0).select("hi", "lo", "mac").unique()
        if s.height == 0:
            return pl.DataFrame(schema={"mac": pl.UInt64(), "n_ips": pl.Int64()})
        hi, lo = s["hi"].to_numpy(), s["lo"].to_numpy()
        kind = addr.classify(hi, lo)
        v4 = addr.is_v4(hi, lo)
        own = (kind != addr.KIND_LINK_LOCAL) & (kind != addr.KIND_UNSPECIFIED) & (kind != addr.KIND_LOOPBACK)
        net = np.where(v4, lo >> np.uint64(8), hi)  # /24 for IPv4, /64 for IPv6
        s = s.with_columns(pl.Series("net", net), pl.Series("v4", v4), pl.Series("own", own)).filter("own")
        g = s.group_by("mac").agg(
            pl.len().cast(pl.Int64).alias("n_ips"),
            pl.col("net").filter(pl.col("v4")).n_unique().alias("n4"),
            pl.col("net").filter(~pl.col("v4")).n_unique().alias("n6"))
        return g.filter((pl.col("n_ips") >= ROUTER_MIN_IPS) | (pl.col("n4") >= 2) | (pl.col("n6") >= 2)).select(
            "mac", "n_ips")

    def devices(self) -> pl.DataFrame:
        """The inventory now (DEVICES schema), sorted by address."""
        self._fold()
        src = self._src
        if src.height == 0 and self._arp.height == 0:
            return pl.DataFrame(schema=DEVICES)
        routers = self.router_macs()
        rset = routers["mac"]
        # per IP: counters as sender, the first VLAN, and the best local MAC
        per_ip = src.group_by(["hi", "lo"]).agg(
            pl.col("pkts").sum().alias("pkts_sent"), pl.col("bytes").sum().alias("bytes_sent"),
            pl.col("first_ts").min(), pl.col("last_ts").max(),
            pl.col("vlan").sort_by("first_ts").drop_nulls().first().alias("vlan"))
        local = src.filter((pl.col("mac") != 0) & ~pl.col("mac").is_in(rset.implode())).sort(
            ["hi", "lo", "pkts", "mac"], descending=[False, False, True, False]).group_by(
            ["hi", "lo"], maintain_order=True).agg(pl.col("mac").first().alias("mac_traffic"))
        arp = self._arp.sort(["hi", "lo", "n", "mac"], descending=[False, False, True, False]).group_by(
            ["hi", "lo"], maintain_order=True).agg(pl.col("mac").first().alias("mac_arp"))
        d = per_ip.join(local, on=["hi", "lo"], how="left").join(arp, on=["hi", "lo"], how="left")
        d = d.with_columns(pl.coalesce("mac_arp", "mac_traffic").alias("mac")).drop("mac_arp", "mac_traffic")
        d = d.join(self._dst.rename({"pkts": "pkts_recv", "bytes": "bytes_recv", "first_ts": "f2",
                                     "last_ts": "l2"}), on=["hi", "lo"], how="left")
        d = d.with_columns(
            pl.min_horizontal("first_ts", "f2").alias("first_ts"), pl.max_horizontal("last_ts", "l2").alias("last_ts"),
            pl.col("pkts_recv").fill_null(0), pl.col("bytes_recv").fill_null(0)).drop("f2", "l2")
        d = d.with_columns(pl.col("mac").is_in(rset.implode()).fill_null(False).alias("is_router"))
        # a router MAC that no IP is bound to by ARP: a MAC-only router device
        bound = d.filter(pl.col("is_router"))["mac"]
        orphan = src.filter(pl.col("mac").is_in(rset.implode()) & ~pl.col("mac").is_in(bound.implode())).group_by("mac").agg(
            pl.col("pkts").sum().alias("pkts_sent"), pl.col("bytes").sum().alias("bytes_sent"),
            pl.col("first_ts").min(), pl.col("last_ts").max(), pl.col("vlan").first())
        if orphan.height:
            d = pl.concat([d, orphan.with_columns(
                pl.lit(None, dtype=pl.UInt64).alias("hi"), pl.lit(None, dtype=pl.UInt64).alias("lo"),
                pl.lit(0, dtype=pl.Int64).alias("pkts_recv"), pl.lit(0, dtype=pl.Int64).alias("bytes_recv"),
                pl.lit(True).alias("is_router"))], how="diagonal_relaxed")

        d = self._with_names(d)
        d = self._with_edges(d)
        # zone, vendor, text
        hi = d["hi"].fill_null(0).to_numpy()
        lo = d["lo"].fill_null(0).to_numpy()
        vl = d["vlan"].fill_null(-1).to_numpy()
        zn, zk = self.zones.classify(hi, lo, vl)
        # a global address with a MAC of its own sits on the local segment (plants do use
        # public ranges inside): internal, not external
        own_mac = (d["mac"].is_not_null() & ~d["is_router"]).to_numpy()
        moved = own_mac & (zk == EXTERNAL)
        zn = np.where(moved, INTERNAL, zn)
        zk = np.where(moved, INTERNAL, zk)
        has_ip = d["hi"].is_not_null().to_numpy()
        texts = np.array(addr.ip_texts(hi, lo), dtype=object) if d.height else np.array([], dtype=object)
        macs = d["mac"].fill_null(0).to_numpy()
        tab = self._oui or oui.table()
        vendors = tab.lookup_many(macs)
        ip_text = np.where(has_ip, texts, None)
        dev = [t if h else addr.mac_to_text(m) for t, h, m in zip(texts.tolist(), has_ip.tolist(), macs.tolist(), strict=True)]
        d = d.with_columns(
            pl.Series("ip", ip_text.tolist(), dtype=pl.String), pl.Series("device", dev, dtype=pl.String),
            pl.Series("zone", zn.tolist(), dtype=pl.String), pl.Series("zone_kind", zk.tolist(), dtype=pl.String),
            pl.Series("vendor", [v if m else None for v, m in zip(vendors, macs.tolist(), strict=True)],
                      dtype=pl.String),
        )
        d = infer_roles(d)
        for k, t in DEVICES.items():
            if k not in d.columns:
                d = d.with_columns(pl.lit(None, dtype=t).alias(k))
        return d.select(list(DEVICES)).cast(DEVICES).sort(["hi", "lo", "device"], nulls_last=True)

    def changed_rows(self, devices: pl.DataFrame) -> pl.DataFrame:
        """The rows of `devices` (this inventory's devices()) that can differ from the table as it
        was last written (`mark_written`; plantwatch.core.inventory.changes)."""
        return self.touched.rows(devices, self.router_macs()["mac"], self._src, self._arp)

    def mark_written(self) -> None:
        """The devices table now holds devices() in full: collect changes from here."""
        self.touched.written(self.router_macs()["mac"])

    def from_state(self, state: ComponentState) -> None:
        super().from_state(state)
        self.touched.written(self.router_macs()["mac"])   # the stored table is this state's

    def _with_names(self, d: pl.DataFrame) -> pl.DataFrame:
        return with_names(d, self._names, self._macnames)

    def _edges_all(self) -> pl.DataFrame:
        if self._open_sessions is not None and self._open_sessions.height:
            return _sum_edges(pl.concat([self._edges, edges_from_sessions(self._open_sessions)]))
        return self._edges

    def _with_edges(self, d: pl.DataFrame) -> pl.DataFrame:
        return with_edges(d, self._edges_all())


__all__ = ["DEVICES", "DeviceInventory", "ICS_APPS", "ROLE_ENGINEERING", "ROLE_EXTERNAL", "ROLE_HMI",
           "ROLE_PLC", "ROLE_ROUTER", "ROLE_SERVER", "ROLE_UNKNOWN", "ROLE_WORKSTATION",
           "SERVER_MIN_CLIENTS", "edges_from_sessions", "endpoints_from_sessions", "infer_roles",
           "packet_endpoints"]
