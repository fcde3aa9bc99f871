"""The device list: rows with scores, breach counts and activity sparklines, filtered and sorted."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from plantwatch.core.decode.addr import text_to_ip
from plantwatch.core.inventory.zones import KINDS
from plantwatch.core.store.database import Store
from plantwatch.core.views.console.common import (
    SPARK_BUCKETS,
    FilterError,
    _json_list,
    _u,
    check_site,
    detection_ran,
    has_table,
    in_site,
    learn_end,
    sites,
)
from plantwatch.core.views.console.filters import DeviceFilter
from plantwatch.core.views.console.identity import IdentitySummary, summaries

# zone kinds, and the words addresses outside every configured zone get: a zone filter on one of
# them is valid even when no device is in it now
ZONE_WORDS = frozenset(KINDS) | {"internal", "external"}


@dataclass(frozen=True, slots=True)
class DeviceRow:
    device: str
    ip: str
    name: str
    vendor: str
    zone: str
    zone_kind: str
    role: str
    first_ts: int | None
    last_ts: int | None
    breaches: int
    score: float | None
    new: bool
    activity: tuple[int, ...]
    model: str = ""             # identity from the wire (core/views/console/identity.py)
    firmware: str = ""
    serial: str = ""
    vulns: int = 0              # CVEs of imported advisories matching it
    site: str = ""              # the site it is at (a store of many sites: 10.0.0.5 at each is two devices)


@dataclass(frozen=True, slots=True)
class DeviceList:
    rows: tuple[DeviceRow, ...]
    total: int                  # devices in the store, before the filter
    detection: bool


SORT_KEYS = ("score", "address", "name", "vendor", "zone", "role", "first", "breaches")


def _scores(store: Store) -> dict[tuple[str, str], float]:
    """Each (site, device)'s threat score: its highest hourly score (device_scores), else, at a
    site with no scores stored, its best breach."""
    cond, site = in_site(store)
    out: dict[tuple[str, str], float] = {}
    if has_table(store, "device_scores"):
        out = {(r[0], r[1]): float(r[2]) for r in store.execute(
            f"SELECT site, device, MAX(score) FROM device_scores WHERE {cond} GROUP BY site, device", site)
            if r[2] is not None}
    if has_table(store, "breaches"):
        scored = {at for at, _ in out}
        out.update({(r[0], r[1]): float(r[2] or 0) for r in store.execute(
            f"SELECT site, device, MAX(score) FROM breaches WHERE {cond} GROUP BY site, device", site)
            if r[0] not in scored})
    return out


def _breach_counts(store: Store) -> dict[tuple[str, str], int]:
    """Breaches per (site, device), counting the device that did it and the devices it targeted."""
    out: dict[tuple[str, str], int] = {}
    cond, site = in_site(store)
    for at, devs, dev in store.execute(f"SELECT site, devices, device FROM breaches WHERE {cond}", site):
        names = {str(d) for d in _json_list(devs)} | ({dev} if dev else set())
        for d in names:
            out[(at, d)] = out.get((at, d), 0) + 1
    return out


def activity(store: Store, buckets: int = SPARK_BUCKETS) -> dict[tuple[str, int, int], tuple[int, ...]]:
    """Sessions started per time bucket over the store's span, per (site, address) (client or server)."""
    cond, site = in_site(store)
    lo_hi = store.execute(f"SELECT MIN(first_ts), MAX(first_ts) FROM sessions WHERE {cond}", site).fetchone()
    if lo_hi[0] is None:
        return {}
    t0, t1 = int(lo_hi[0]), int(lo_hi[1])
    width = max(1, (t1 - t0) // buckets + 1)
    out: dict[tuple[str, int, int], list[int]] = {}
    for side in ("client", "server"):
        cur = store.execute(
            f"SELECT site, {side}_hi, {side}_lo, (first_ts - ?) / ?, COUNT(*) FROM sessions"
            f" WHERE {cond} GROUP BY 1, 2, 3, 4", (t0, width, *site))   # by position: the same in both engines
        for at, hi, lo, b, n in cur:
            arr = out.setdefault((at, hi, lo), [0] * buckets)
            arr[min(int(b), buckets - 1)] += n
    return {k: tuple(v) for k, v in out.items()}


def _devices_on_port(store: Store, port: int) -> set[tuple[str, int, int]]:
    """(site, address) of the devices that served `port` or connected to it."""
    idx = {r[0] for r in store.execute("SELECT name FROM sqlite_master WHERE type='index'"
                                       " AND tbl_name='sessions'")}
    cond, site = in_site(store, "d.site")
    if {"sessions_server_port", "sessions_client_port"} <= idx:
        # two index probes per device (schema V3): grows with the devices, not the sessions.
        # One row of JSON back rather than a row per device: a worker thread fetching thousands
        # of rows waits for the UI thread's GIL between rows.
        found = store.execute(
            "SELECT json_group_array(json_array(site, hi, lo)) FROM devices d WHERE (EXISTS (SELECT 1 FROM"
            " sessions s INDEXED BY sessions_server_port WHERE server_hi = d.hi AND server_lo = d.lo"
            " AND server_port = ? AND s.site = d.site) OR EXISTS (SELECT 1 FROM sessions s INDEXED BY"
            " sessions_client_port WHERE client_hi = d.hi AND client_lo = d.lo AND server_port = ?"
            f" AND s.site = d.site)) AND {cond}", (port, port, *site)).fetchone()[0]
        return {(at, hi, lo) for at, hi, lo in json.loads(found or "[]")}
    cond, site = in_site(store)
    rows = store.execute("SELECT DISTINCT site, client_hi, client_lo, server_hi, server_lo FROM sessions"
                         f" WHERE server_port = ? AND {cond}", (port, *site)).fetchall()
    return {(r[0], r[1], r[2]) for r in rows} | {(r[0], r[3], r[4]) for r in rows}


@dataclass
class DeviceCache:
    """What `device_list` read last time on one connection, reused while that connection sees no
    commit (PRAGMA data_version) and the sparklines are the same: a new filter or sort then costs a
    pass over the rows in memory instead of reading the store again. One per connection."""
    store: Store | None = None
    key: tuple = ()
    rows: tuple = ()            # (DeviceRow, (site, hi, lo)) of every device
    detection: bool = False
    ordered: dict = field(default_factory=dict)   # (sort, reverse) -> rows in that order
    on_port: dict = field(default_factory=dict)   # port -> devices on it
    extra: dict = field(default_factory=dict)     # the caller's, emptied with the rest


def _device_rows(store: Store, spark: dict) -> tuple[list[tuple[DeviceRow, tuple[str, int, int]]], bool]:
    detection = detection_ran(store)
    scores = _scores(store) if detection else {}
    counts = _breach_counts(store) if detection else {}
    cond, site = in_site(store)
    # what is new is judged per site, against that site's learning (learn end or baseline)
    lends = {at: learn_end(store.for_site(at)) for at in sites(store)}
    known: set[tuple[str, str]] | None = None
    if has_table(store, "baseline_devices") and detection:
        known = {(r[0], r[1]) for r in store.execute(f"SELECT site, device FROM baseline_devices WHERE {cond}", site)}
    idents = summaries(store)
    none = IdentitySummary()
    out = []
    for at, device, hi, lo, ip, name, vendor, zone, zkind, role, first, last in store.execute(
            "SELECT site, device, hi, lo, ip, name, vendor, zone, zone_kind, role, first_ts, last_ts FROM devices"
            f" WHERE {cond}", site):
        lend = lends.get(at)
        if lend is not None:
            new = first is not None and first > lend
        else:
            new = known is not None and (at, device) not in known and zkind != "external"
        ident = idents.get((at, device), none)
        out.append((DeviceRow(device=device, ip=ip or device, name=name or "", vendor=vendor or "",
                              zone=zone or "", zone_kind=zkind or "", role=role or "", first_ts=first,
                              last_ts=last, breaches=counts.get((at, device), 0), score=scores.get((at, device)),
                              new=new, activity=spark.get((at, hi, lo), ()), model=ident.model,
                              firmware=ident.firmware, serial=ident.serial, vulns=ident.vulns, site=at),
                    (at, hi, lo)))
    return out, detection


def device_list(store: Store, flt: DeviceFilter | None = None, sort: str = "score",
                reverse: bool = False,
                spark: dict[tuple[int, int], tuple[int, ...]] | None = None,
                cache: DeviceCache | None = None) -> DeviceList:
    """Every device matching `flt`, sorted by `sort` (score: highest first, then address)."""
    flt = flt or DeviceFilter()
    if cache is None:
        cache = DeviceCache()
    key = (store.execute("PRAGMA data_version").fetchone()[0], id(spark))
    if cache.store is not store or cache.key != key or not cache.key:
        rows, detection = _device_rows(store, spark or {})
        cache.store, cache.key, cache.rows, cache.detection = store, key, tuple(rows), detection
        cache.ordered.clear()
        cache.on_port.clear()
        cache.extra.clear()
    ordered = cache.ordered.get((sort, reverse))
    if ordered is None:
        # the stored address halves sort like the parsed text, without parsing 5,000 addresses
        addrs = {(r.site, r.device): (_u(hi), _u(lo)) if hi is not None and lo is not None else _addr_key(r.ip)
                 for r, (_, hi, lo) in cache.rows}
        by = _sort_key(sort, addrs)
        ordered = cache.ordered[(sort, reverse)] = tuple(
            sorted(cache.rows, key=lambda x: by(x[0]), reverse=reverse))
    if flt.empty:
        return DeviceList(rows=tuple(r for r, _ in ordered), total=len(ordered), detection=cache.detection)
    if flt.zone and cache.rows and flt.zone not in ZONE_WORDS \
            and not any(flt.zone in (r.zone.lower(), r.zone_kind.lower()) for r, _ in cache.rows):
        zones = sorted({z for r, _ in cache.rows for z in (r.zone, r.zone_kind) if z})
        raise FilterError(f"zone:{flt.zone}: no device is in that zone (zones: {', '.join(zones[:10])})")
    if flt.site is not None:
        check_site(store, flt.site)
    on_port = None
    if flt.port is not None:
        on_port = cache.on_port.get(flt.port)
        if on_port is None:
            on_port = cache.on_port[flt.port] = _devices_on_port(store, flt.port)
    out = tuple(r for r, hl in ordered
                if (on_port is None or hl in on_port) and _device_matches(r, flt, None, hl))
    return DeviceList(rows=out, total=len(ordered), detection=cache.detection)


def _device_matches(r: DeviceRow, f: DeviceFilter, on_port: set | None, key: tuple) -> bool:
    if f.site is not None and r.site != f.site:
        return False
    if f.zone and f.zone not in (r.zone.lower(), r.zone_kind.lower()):
        return False
    if f.role and not r.role.lower().startswith(f.role):
        return False
    if f.vendor and f.vendor not in r.vendor.lower():
        return False
    if f.new is not None and r.new != f.new:
        return False
    if f.model and f.model not in r.model.lower():
        return False
    if f.firmware and f.firmware not in r.firmware.lower():
        return False
    if f.serial and f.serial not in r.serial.lower():
        return False
    if on_port is not None and key not in on_port:
        return False
    if f.score is not None:
        s = r.score if r.score is not None else 0.0
        ok = {">": s > f.score, ">=": s >= f.score, "<": s < f.score, "<=": s <= f.score,
              "=": abs(s - f.score) < 1e-9}[f.score_op or ">="]
        if not ok:
            return False
    if not f.text:
        return True
    hay = f"{r.ip} {r.device} {r.name} {r.vendor} {r.zone} {r.role} {r.model}".lower()
    return all(w in hay for w in f.text)


def _addr_key(ip: str) -> tuple[int, int]:
    try:
        return text_to_ip(ip)
    except ValueError:
        return (1 << 64, 0)


def _sort_key(sort: str, addrs: dict[tuple[str, str], tuple[int, int]] | None = None):
    def addr_key(r: DeviceRow) -> tuple:
        a = addrs.get((r.site, r.device)) if addrs is not None else None
        return (*(a if a is not None else _addr_key(r.ip)), r.site)

    if sort == "score":
        return lambda r: (-(r.score or 0.0), -r.breaches, not r.new, addr_key(r))
    if sort == "address":
        return addr_key
    if sort == "first":
        return lambda r: (r.first_ts or 0, addr_key(r))
    if sort == "breaches":
        return lambda r: (-r.breaches, addr_key(r))
    attr = {"name": "name", "vendor": "vendor", "zone": "zone", "role": "role"}.get(sort, "ip")
    return lambda r: (getattr(r, attr).lower() == "", getattr(r, attr).lower(), addr_key(r))
