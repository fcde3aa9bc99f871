"""The device inventory: identity, names, vendor, zone, inferred role and counters.

A device is an IP address that sent at least one packet (multicast, broadcast and 0.0.0.0 are
never devices). Its MAC is attached only when the MAC is local to it: a MAC seen as the source
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
from plantwatch.core.decode.ics import ICS_APPS, ICS_PORTS
from plantwatch.core.decode.schema import (
    APP_NAMES,
    CLS_ACTION,
    CLS_DISCOVER,
    CLS_READ,
    CLS_REPROGRAM,
)
from plantwatch.core.flows.sessions import (
    ENDPOINTS,
    FAILED_STATES,
    L2_FLOW,
    flow_addresses,
    session_ops,
)
from plantwatch.core.inventory import oui
from plantwatch.core.inventory.zones import EXTERNAL, INTERNAL, Zones

ROLE_PLC = "plc"
ROLE_HMI = "hmi"
ROLE_ENGINEERING = "engineering"
ROLE_SERVER = "server"
ROLE_WORKSTATION = "workstation"
ROLE_EXTERNAL = "external"
ROLE_ROUTER = "router"
ROLE_UNKNOWN = "unknown"

# A MAC that sources this many IPs, or IPs of two subnets (/24 IPv4, /64 IPv6, link-local
# excluded), is a router's.
ROUTER_MIN_IPS = 8
# Pending rows folded into the tables once this many have piled up.
FOLD_ROWS = 1_000_000
# A device serving this many distinct clients on non-ICS ports is a server.
SERVER_MIN_CLIENTS = 3

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
    "server_clients": pl.Int64(), # distinct clients it served on non-ICS ports
    "is_router": pl.Boolean(),
}

_SRC = {"hi": pl.UInt64(), "lo": pl.UInt64(), "mac": pl.UInt64(), "pkts": pl.Int64(),
        "bytes": pl.Int64(), "first_ts": pl.Int64(), "last_ts": pl.Int64(), "vlan": pl.Int32()}
_DST = {"hi": pl.UInt64(), "lo": pl.UInt64(), "pkts": pl.Int64(), "bytes": pl.Int64(),
        "first_ts": pl.Int64(), "last_ts": pl.Int64()}
_BIND = {"hi": pl.UInt64(), "lo": pl.UInt64(), "mac": pl.UInt64(), "n": pl.Int64()}
_NAMES = {"hi": pl.UInt64(), "lo": pl.UInt64(), "name": pl.String(), "source": pl.String(),
          "first_ts": pl.Int64()}
_MACNAMES = {"mac": pl.UInt64(), "name": pl.String(), "first_ts": pl.Int64()}
_EDGES = {"c_hi": pl.UInt64(), "c_lo": pl.UInt64(), "s_hi": pl.UInt64(), "s_lo": pl.UInt64(),
          "proto": pl.UInt8(), "port": pl.Int32(), "app": pl.UInt8(), "sessions": pl.Int64(),
          "ok": pl.Int64(), "failed": pl.Int64(), "ops": pl.Int64(), "read": pl.Int64(),
          "discover": pl.Int64(), "action": pl.Int64(), "reprogram": pl.Int64()}
_SOURCE_RANK = {"dns": 0, "dhcp": 1, "nbns": 2}


def _empty(schema: dict) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def edges_from_sessions(sessions: pl.DataFrame) -> pl.DataFrame:
    """Sessions (plantwatch.core.flows.sessions.SESSIONS) to edge rows client -> server:port (_EDGES), one per
    session; _sum_edges folds them."""
    if sessions.height == 0:
        return _empty(_EDGES)
    so = session_ops(sessions).filter(pl.col("from_client"))
    by_cls = so.group_by("session_id").agg(
        *[pl.col("count").filter(pl.col("cls") == c).sum().alias(n)
          for c, n in ((CLS_READ, "read"), (CLS_DISCOVER, "discover"), (CLS_ACTION, "action"),
                       (CLS_REPROGRAM, "reprogram"))])
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


class DeviceInventory:
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
            self._pend_ep = pl.concat([self._pend_ep, e.cast(ENDPOINTS)], rechunk=False)
            self._pend_rows += e.height

    def _fold_endpoints(self, e: pl.DataFrame) -> None:
        src = e.filter(pl.col("pkts_sent") > 0).group_by(["hi", "lo", "mac"]).agg(
            pl.col("pkts_sent").sum().alias("pkts"), pl.col("bytes_sent").sum().alias("bytes"),
            pl.col("first_ts").min(), pl.col("last_ts").max(), pl.col("vlan").drop_nulls().first())
        if src.height:
            src = src.filter(~pl.Series(addr.is_group(src["hi"].to_numpy(), src["lo"].to_numpy())))
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
        self._arp = pl.concat([self._arp, b.cast(_BIND)]).group_by(["hi", "lo", "mac"]).agg(
            pl.col("n").sum()).select(list(_BIND))

    def _add_names(self, p: pl.DataFrame) -> None:
        new: list[pl.DataFrame] = []
        # DNS: every A/AAAA address of an answer is named by the question's name
        if "dns_answers" in p.columns and p["dns_answers"].null_count() < p.height:
            d = p.select("dns_response", "dns_answers", "dns_qname", "dns_rcode", "ts").filter(
                pl.col("dns_response").fill_null(False) & pl.col("dns_answers").is_not_null()
                & pl.col("dns_qname").is_not_null() & (pl.col("dns_rcode").fill_null(0) == 0))
            if d.height:
                d = d.select(pl.col("dns_qname").alias("name"), "ts",
                             pl.col("dns_answers").str.split(",").alias("a")).explode("a")
                d = d.filter(pl.col("a").is_not_null() & (pl.col("a") != ""))
                rows = []
                for name, ts, a in d.iter_rows():  # answers are few: one per DNS response
                    try:
                        hi, lo = addr.text_to_ip(a)
                    except ValueError:
                        continue
                    rows.append((hi, lo, name.rstrip("."), "dns", ts))
                if rows:
                    new.append(pl.DataFrame(rows, schema=_NAMES, orient="row"))
        # DHCP: host name of the client MAC, and of the requested IP
        if "dhcp_hostname" in p.columns and p["dhcp_hostname"].null_count() < p.height:
            h = p.select("dhcp_hostname", "dhcp_chaddr", "dhcp_req_ip", "ts").filter(
                pl.col("dhcp_hostname").is_not_null() & (pl.col("dhcp_hostname") != ""))
            if h.height:
                mn = h.filter(pl.col("dhcp_chaddr").is_not_null()).select(
                    pl.col("dhcp_chaddr").alias("mac"), pl.col("dhcp_hostname").alias("name"),
                    pl.col("ts").alias("first_ts"))
                if mn.height:
                    self._macnames = pl.concat([self._macnames, mn.cast(_MACNAMES)]).unique(
                        ["mac", "name"], keep="first", maintain_order=True)
                rows = []
                for name, req, ts in h.select("dhcp_hostname", "dhcp_req_ip", "ts").iter_rows():
                    if req:
                        try:
                            hi, lo = addr.text_to_ip(req)
                        except ValueError:
                            continue
                        rows.append((hi, lo, name, "dhcp", ts))
                if rows:
                    new.append(pl.DataFrame(rows, schema=_NAMES, orient="row"))
        # NBNS: a unicast answer from port 137 names its sender (workstation/server names only)
        if "nbns_name" in p.columns and p["nbns_name"].null_count() < p.height:
            nb = p.select("nbns_name", "sport", "src_hi", "src_lo", "dst_hi", "dst_lo", "eth_dst",
                          "ts").filter(pl.col("nbns_name").is_not_null() & (pl.col("sport") == 137)
                          & ~pl.col("nbns_name").str.starts_with("*")
                          & (pl.col("nbns_name").str.ends_with("<00>")
                             | pl.col("nbns_name").str.ends_with("<20>")))
            if nb.height:
                dh = nb["dst_hi"].fill_null(0).to_numpy()
                dl = nb["dst_lo"].fill_null(0).to_numpy()
                em = nb["eth_dst"].fill_null(0).to_numpy()
                # unicast: not a group address, not x.x.x.255, not an Ethernet group MAC
                uni = (~addr.is_group(dh, dl) & ~(addr.is_v4(dh, dl) & ((dl & np.uint64(255)) == 255))
                       & (((em >> np.uint64(40)) & np.uint64(1)) == 0))
                nb = nb.filter(pl.Series(uni))
                if nb.height:
                    new.append(nb.select(
                        pl.col("src_hi").alias("hi"), pl.col("src_lo").alias("lo"),
                        pl.col("nbns_name").str.slice(0, pl.col("nbns_name").str.len_chars() - 4).alias("name"),
                        pl.lit("nbns").alias("source"), pl.col("ts").alias("first_ts")).cast(_NAMES))
        # PROFINET DCP: an identify response or a hello names its sender's station (the
        # Ethernet-only device of its MAC, and the IP it announces)
        if "pn_station" in p.columns and p["pn_station"].null_count() < p.height:
            pn = p.filter(pl.col("pn_station").is_not_null() & (pl.col("pn_station") != "")
                          & pl.col("pn_frame_id").is_in([0xFEFF, 0xFEFC]) & pl.col("eth_src").is_not_null())
            if pn.height:
                name = pl.col("pn_station").alias("name")
                new.append(pn.select(pl.lit(addr.L2_HI, pl.UInt64).alias("hi"), pl.col("eth_src").alias("lo"),
                                     name, pl.lit("profinet").alias("source"),
                                     pl.col("ts").alias("first_ts")).cast(_NAMES))
                ip = pn.filter(pl.col("pn_ip").fill_null(0) > 0)
                if ip.height:
                    new.append(ip.select(pl.lit(0, pl.UInt64).alias("hi"),
                                         (pl.col("pn_ip") | (0xFFFF << 32)).cast(pl.UInt64).alias("lo"),
                                         name, pl.lit("profinet").alias("source"),
                                         pl.col("ts").alias("first_ts")).cast(_NAMES))
        if new:
            self._names = pl.concat([self._names, *new]).unique(
                ["hi", "lo", "name", "source"], keep="first", maintain_order=True)

    # --- the inventory ----------------------------------------------------------------------

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

    def _with_names(self, d: pl.DataFrame) -> pl.DataFrame:
        names = self._names
        if self._macnames.height:
            by_mac = d.filter(pl.col("mac").is_not_null() & pl.col("hi").is_not_null()).select(
                "hi", "lo", "mac").join(self._macnames, on="mac").select(
                "hi", "lo", "name", pl.lit("dhcp").alias("source"), "first_ts")
            names = pl.concat([names, by_mac.cast(_NAMES)])
        if names.height == 0:
            return d.with_columns(pl.lit(None, dtype=pl.String).alias("name"),
                                  pl.lit(None, dtype=pl.String).alias("name_source"),
                                  pl.lit([], dtype=pl.List(pl.String)).alias("names"))
        n = names.unique(["hi", "lo", "name", "source"], keep="first").with_columns(
            pl.col("source").replace_strict(_SOURCE_RANK, default=9).alias("rank")).sort(
            ["hi", "lo", "rank", "first_ts", "name"])
        g = n.group_by(["hi", "lo"], maintain_order=True).agg(
            pl.col("name").first(), pl.col("source").first().alias("name_source"),
            pl.col("name").unique(maintain_order=True).head(8).alias("names"))
        return d.join(g, on=["hi", "lo"], how="left").with_columns(pl.col("names").fill_null([]))

    def _edges_all(self) -> pl.DataFrame:
        if self._open_sessions is not None and self._open_sessions.height:
            return _sum_edges(pl.concat([self._edges, edges_from_sessions(self._open_sessions)]))
        return self._edges

    def _with_edges(self, d: pl.DataFrame) -> pl.DataFrame:
        e = self._edges_all()
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
            pl.struct("c_hi", "c_lo").filter(served & ~ics_port & ~ics_app).n_unique().cast(pl.Int64)
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
