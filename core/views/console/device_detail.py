"""One device in depth: peers, ICS operations, charts and its threat score over time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plantwatch.core.decode import addr
from plantwatch.core.decode.schema import APP_NAMES, CLASS_NAMES
from plantwatch.core.store.database import Store
from plantwatch.core.views.console.breaches import BreachRow, breaches
from plantwatch.core.views.console.common import (
    _FAILED_SQL,
    PROTO_NAMES,
    _json_list,
    _u,
    columns,
    detection_ran,
    fmt_ts,
    has_table,
    ip_of,
    learn_end,
)
from plantwatch.core.views.console.connections import Connections, connections
from plantwatch.core.views.console.filters import ConnFilter
from plantwatch.core.views.console.identity import (
    IdentityAttr,
    VulnMatch,
    cpes,
    device_identity,
    vulnerabilities,
)


@dataclass(frozen=True, slots=True)
class Peer:
    address: str
    direction: str          # "out" (the device is the client) or "in"
    port: int | None
    protocol: str
    sessions: int
    failed: int
    bytes: int
    last_ts: int


@dataclass(frozen=True, slots=True)
class OpCount:
    direction: str          # "sent" or "received"
    cls: str
    protocol: str
    name: str
    count: int
    peers: int


@dataclass(frozen=True, slots=True)
class Series:
    """A time series for a chart: bucket start times (ns) and values."""
    title: str
    ts: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class DeviceDetail:
    device: str
    ip: str
    fields: tuple[tuple[str, str], ...]   # label, value (values may be from the wire)
    role: str
    role_reasons: tuple[str, ...]
    learning: str                          # "learning" | "mature" | "new" ... with words
    learning_reasons: tuple[str, ...]
    peers: tuple[Peer, ...]
    ops: tuple[OpCount, ...]
    breaches: tuple[BreachRow, ...]
    charts: tuple[Series, ...]
    connections: Connections
    identity: tuple[IdentityAttr, ...] = ()     # stated on the wire, with the proving frames
    vulns: tuple[VulnMatch, ...] = ()           # imported advisories matching it
    cpes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (component, CPE 2.3 names)


def device_detail(store: Store, device: str, conn_limit: int = 200) -> DeviceDetail | None:
    r = store.execute(
        "SELECT device, hi, lo, ip, mac, vendor, name, name_source, names, zone, zone_kind, vlan, role,"
        " role_reasons, first_ts, last_ts, pkts_sent, pkts_recv, bytes_sent, bytes_recv,"
        " sessions_client, sessions_server, failed_client, peers, ics_used, ics_served"
        " FROM devices WHERE device = ? AND site = ?", (device, store.site)).fetchone()
    if r is None:
        return None
    (dev, hi, lo, ip, mac, vendor, name, nsrc, names, zone, zkind, vlan, role, reasons, first, last,
     ps, pr, bs, br, sc, ss, fc, peers, used, served) = r
    from plantwatch.core.decode.addr import mac_to_text

    fields = (
        ("address", ip or dev), ("MAC", mac_to_text(_u(mac)) if mac is not None else "-"),
        ("vendor", vendor or "-"),
        ("name", (name or "-") + (f" (from {nsrc})" if name and nsrc else "")),
        ("other names", ", ".join(str(n) for n in _json_list(names) if n != name) or "-"),
        ("zone", f"{zone or '-'} ({zkind})" + (f", VLAN {vlan}" if vlan is not None else "")),
        ("first seen", fmt_ts(first)), ("last seen", fmt_ts(last)),
        ("packets", f"{ps or 0:,} sent, {pr or 0:,} received"),
        ("bytes", f"{bs or 0:,} sent, {br or 0:,} received"),
        ("sessions", f"{sc or 0:,} as client ({fc or 0:,} failed), {ss or 0:,} as server, {peers or 0} peers"),
        ("ICS used", ", ".join(_json_list(used)) or "-"),
        ("ICS served", ", ".join(_json_list(served)) or "-"),
    )
    learning, lreasons = _learning(store, dev, first, last)
    flt = ConnFilter(device=ip) if ip else ConnFilter()
    return DeviceDetail(
        device=dev, ip=ip or dev, fields=fields, role=role or "unknown",
        role_reasons=tuple(s for s in (reasons or "").split("; ") if s),
        learning=learning, learning_reasons=lreasons,
        peers=_peers(store, hi, lo) if hi is not None else (),
        ops=_ops(store, hi, lo) if hi is not None else (),
        breaches=breaches(store, device=dev, limit=100).rows if has_table(store, "breaches") else (),
        charts=_device_charts(store, dev, hi, lo) if hi is not None else (),
        connections=connections(store, flt, conn_limit) if ip else Connections((), 0),
        identity=device_identity(store, dev), vulns=tuple(vulnerabilities(store, dev).get(dev, [])),
        cpes=tuple((c, tuple(n)) for c, n in cpes(store, dev).items()))


def _learning(store: Store, dev: str, first: int | None, last: int | None) -> tuple[str, tuple[str, ...]]:
    lend = learn_end(store)
    span = ((last or 0) - (first or 0)) / 3.6e12
    if has_table(store, "baseline_devices"):
        row = store.execute("SELECT maturity, reasons FROM baseline_devices WHERE device = ? AND site = ?",
                            (dev, store.site)).fetchone()
        if row is not None:
            return str(row[0] or "learning"), tuple(s for s in str(row[1] or "").split("; ") if s)
    if lend is not None and first is not None and first > lend:
        return "new", (f"first seen {fmt_ts(first)}", f"after learning ended {fmt_ts(lend)}",
                       f"observed for {span:.1f} h", "not in the baseline")
    if not detection_ran(store):
        return "no baseline yet", (f"observed for {span:.1f} h", "detection has not run on this store")
    return "not in the baseline", (f"observed for {span:.1f} h",)


def _peers(store: Store, hi: int, lo: int, limit: int = 60) -> tuple[Peer, ...]:
    out: list[Peer] = []
    for direction, me, other in (("out", "client", "server"), ("in", "server", "client")):
        cur = store.execute(
            f"SELECT {other}_hi, {other}_lo, server_port, proto, app, COUNT(*),"
            f" SUM(state IN {_FAILED_SQL}), SUM(bytes_c2s + bytes_s2c), MAX(last_ts) FROM sessions"
            f" WHERE {me}_hi = ? AND {me}_lo = ? AND site = ? GROUP BY {other}_hi, {other}_lo, server_port, proto, app"
            # ties in group order, stated: the same peers in SQLite and PostgreSQL
            f" ORDER BY COUNT(*) DESC, {other}_hi, {other}_lo, server_port, proto, app LIMIT ?",
            (hi, lo, store.site, limit))
        for ohi, olo, port, proto, app, n, failed, by, lts in cur:
            out.append(Peer(address=ip_of(ohi, olo), direction=direction,
                            port=port if port is not None and port >= 0 else None,
                            protocol=APP_NAMES.get(app or 0, "") or PROTO_NAMES.get(proto, str(proto)),
                            sessions=int(n), failed=int(failed or 0), bytes=int(by or 0),
                            last_ts=int(lts or 0)))
    return tuple(out)


def _ops(store: Store, hi: int, lo: int) -> tuple[OpCount, ...]:
    out: list[OpCount] = []
    for direction, me, other in (("sent", "src", "dst"), ("received", "dst", "src")):
        cur = store.execute(
            f"SELECT cls, app, name, SUM(count), COUNT(DISTINCT {other}_hi || ':' || {other}_lo)"
            f" FROM session_ops WHERE {me}_hi = ? AND {me}_lo = ? AND (requests = 1 OR from_client = 1) AND site = ?"
            " GROUP BY cls, app, name ORDER BY cls DESC, SUM(count) DESC, app, name", (hi, lo, store.site))
        for cls, app, name, n, peers in cur:
            out.append(OpCount(direction=direction, cls=CLASS_NAMES.get(cls, "") or "OTHER",
                               protocol=APP_NAMES.get(app or 0, "") or str(app), name=name or "",
                               count=int(n or 0), peers=int(peers or 0)))
    return tuple(out)


def _device_charts(store: Store, dev: str, hi: int, lo: int, buckets: int = 48) -> tuple[Series, ...]:
    span = store.execute(
        "SELECT MIN(first_ts), MAX(first_ts) FROM sessions WHERE ((client_hi = ? AND client_lo = ?)"
        " OR (server_hi = ? AND server_lo = ?)) AND site = ?", (hi, lo, hi, lo, store.site)).fetchone()
    if span[0] is None:
        return ()
    t0, t1 = int(span[0]), int(span[1])
    width = max(1_000_000_000, (t1 - t0) // buckets + 1)
    n = int((t1 - t0) // width) + 1
    ts = tuple(t0 + i * width for i in range(n))
    total = [0.0] * n
    failed_ext = [0.0] * n
    for side in ("client", "server"):
        cur = store.execute(
            f"SELECT (first_ts - ?) / ?, COUNT(*) FROM sessions WHERE {side}_hi = ? AND {side}_lo = ? AND site = ?"
            " GROUP BY 1", (t0, width, hi, lo, store.site))   # by position: the same in SQLite and PostgreSQL
        for b, c in cur:
            total[min(int(b), n - 1)] += c
    cur = store.execute(
        "SELECT (first_ts - ?) / ?, server_hi, server_lo, COUNT(*) FROM sessions WHERE client_hi = ?"
        f" AND client_lo = ? AND state IN {_FAILED_SQL} AND site = ? GROUP BY 1, 2, 3", (t0, width, hi, lo, store.site))
    rows = cur.fetchall()
    if rows:
        # one vectorised classification of every peer (per row it was half of this screen's query)
        ext = _external([r[1] for r in rows], [r[2] for r in rows])
        for (b, _, _, c), is_ext in zip(rows, ext, strict=True):
            if is_ext:
                failed_ext[min(int(b), n - 1)] += c
    charts = [Series("connections started", ts, tuple(total))]
    if any(failed_ext):
        charts.append(Series("failed external connections", ts, tuple(failed_ext)))
    score = score_series(store, dev)
    if score is not None:
        charts.append(score)
    return tuple(charts)


def _external(his: list[int], los: list[int]) -> list[bool]:
    k = addr.classify(np.array([_u(h) for h in his], dtype=np.uint64),
                      np.array([_u(lo) for lo in los], dtype=np.uint64))
    return (k == addr.KIND_GLOBAL).tolist()


def score_series(store: Store, dev: str) -> Series | None:
    """The device's threat score over time ("mathematical importance"), when stored."""
    if has_table(store, "device_scores") and {"device", "ts", "score"} <= set(columns(store, "device_scores")):
        rows = store.execute("SELECT ts, score FROM device_scores WHERE device = ? AND site = ? ORDER BY ts",
                             (dev, store.site)).fetchall()
        if rows:
            return Series("threat score", tuple(int(r[0]) for r in rows),
                          tuple(float(r[1] or 0) for r in rows))
    return None
