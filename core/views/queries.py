"""The console's read API over the store: small immutable results for the UI's workers.

Every function takes a `Store` (opened by the calling thread; a read-only one is fine) and returns
frozen dataclasses holding tuples, so a result can be handed to the UI thread as a snapshot that
nothing will change under it. Strings are returned as stored (untrusted when they came off the
wire); the UI escapes them (plantwatch.core.views.textsafe.printable) and renders them as plain text.

Detection tables (breaches, incidents, scores) are read when the store has them; before that,
the results say so (`Status.detection`) instead of inventing numbers.

Filters are small `key:value` languages parsed here, so they can be tested without a UI:
devices `zone:ot role:plc score:>0.5 port:102 new:yes vendor:siemens 10.20`, connections
`device:10.10.10.157 port:102 proto:s7comm state:refused model:scan since:13:00`.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from plantwatch.core.decode import addr
from plantwatch.core.decode.addr import ip_to_text, text_to_ip
from plantwatch.core.decode.schema import APP_NAMES, CLASS_NAMES
from plantwatch.core.flows.sessions import FAILED_STATES
from plantwatch.core.store.database import Store

PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
APP_IDS = {v: k for k, v in APP_NAMES.items() if v}
SPARK_BUCKETS = 16
_FAILED_SQL = "(" + ", ".join(f"'{s}'" for s in sorted(FAILED_STATES)) + ")"
LEARN_END_KEY = "console.learn_end"   # state row: packet time (ns) where learning ended


class FilterError(ValueError):
    """A filter the user typed cannot be understood; str() says which part and why."""


# --------------------------------------------------------------------------- helpers

def _u(v: int | None) -> int:
    return 0 if v is None else int(v) & 0xFFFF_FFFF_FFFF_FFFF


def _s(v: int) -> int:
    """Unsigned 64-bit to the stored signed form."""
    v = int(v) & 0xFFFF_FFFF_FFFF_FFFF
    return v - (1 << 64) if v >= 1 << 63 else v


def ip_of(hi: int | None, lo: int | None) -> str:
    return ip_to_text(_u(hi), _u(lo))


def fmt_ts(ts_ns: int | None, *, date: bool = True) -> str:
    if ts_ns is None:
        return "-"
    t = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def has_table(store: Store, name: str) -> bool:
    return store.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                         (name,)).fetchone() is not None


def detection_ran(store: Store) -> bool:
    """The detection engine has learned a baseline or written breaches into this store."""
    if not has_table(store, "breaches"):
        return False
    if store.execute("SELECT 1 FROM breaches LIMIT 1").fetchone():
        return True
    return has_table(store, "baseline_meta") and \
        store.execute("SELECT 1 FROM baseline_meta LIMIT 1").fetchone() is not None


def columns(store: Store, table: str) -> tuple[str, ...]:
    return tuple(r[1] for r in store.execute(f"PRAGMA table_info({table})").fetchall())


def _json_list(v: object) -> tuple:
    if v is None or v == "":
        return ()
    if isinstance(v, (list, tuple)):
        return tuple(v)
    try:
        out = json.loads(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (v,)
    return tuple(out) if isinstance(out, list) else (out,)


def _addr_params(ip: str) -> tuple[int, int]:
    try:
        hi, lo = text_to_ip(ip)
    except ValueError:
        raise FilterError(f"not an IP address: {ip!r}") from None
    return _s(hi), _s(lo)


def learn_end(store: Store) -> int | None:
    """Packet time at which learning ended (devices first seen after it are new), if known: the
    console's own marker (demo, `open --learn`), else the baseline's first run's end."""
    r = store.execute("SELECT value FROM state WHERE name=?", (LEARN_END_KEY,)).fetchone()
    if r and r[0] is not None:
        with contextlib.suppress(ValueError):
            return int(r[0] if isinstance(r[0], (int, str)) else bytes(r[0]).decode())
    return None


def set_learn_end(store: Store, ts_ns: int) -> None:
    store.execute("INSERT INTO state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE"
                  " SET value=excluded.value", (LEARN_END_KEY, str(int(ts_ns)).encode()))


# --------------------------------------------------------------------------- status

@dataclass(frozen=True, slots=True)
class Status:
    captures: tuple[str, ...] = ()
    packets: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    devices: int = 0
    sessions: int = 0
    breaches: int = 0
    incidents: int = 0
    detection: bool = False      # the store has detection tables
    learn_end: int | None = None
    version: int = 0             # changes whenever the store's content does


def status(store: Store, count_sessions: bool = True) -> Status:
    """What the store holds. `count_sessions=False` skips the one count that grows with the
    store (sessions is then -1), for the console's frequent polling."""
    caps = store.execute("SELECT path, packets, first_ts, last_ts FROM captures ORDER BY capture_id").fetchall()
    n_dev = store.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
    n_ses = store.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] if count_sessions else -1
    last_ses = store.execute("SELECT MAX(last_ts) FROM sessions").fetchone()[0]
    detection = detection_ran(store)
    n_br = store.execute("SELECT COUNT(*) FROM breaches").fetchone()[0] if has_table(store, "breaches") else 0
    n_inc = (store.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
             if has_table(store, "incidents") else 0)
    firsts = [c[2] for c in caps if c[2] is not None]
    lasts = [c[3] for c in caps if c[3] is not None] + ([last_ses] if last_ses is not None else [])
    version = int(store.execute("PRAGMA data_version").fetchone()[0])
    return Status(
        captures=tuple(c[0] for c in caps), packets=int(sum(c[1] or 0 for c in caps)),
        first_ts=min(firsts) if firsts else None, last_ts=max(lasts) if lasts else None,
        devices=int(n_dev), sessions=int(n_ses), breaches=int(n_br), incidents=int(n_inc),
        detection=detection, learn_end=learn_end(store), version=version)


# --------------------------------------------------------------------------- filters

@dataclass(frozen=True, slots=True)
class DeviceFilter:
    zone: str | None = None
    role: str | None = None
    score_op: str | None = None
    score: float | None = None
    port: int | None = None
    new: bool | None = None
    vendor: str | None = None
    text: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self == DeviceFilter()


@dataclass(frozen=True, slots=True)
class ConnFilter:
    device: str | None = None
    port: int | None = None
    proto: str | None = None      # application name (s7comm, modbus, tls...) or tcp/udp/icmp
    state: str | None = None
    model: str | None = None
    since: int | None = None      # packet time, ns
    until: int | None = None
    text: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"{k}:{v}" for k, v in (("device", self.device), ("port", self.port),
                                         ("proto", self.proto), ("state", self.state),
                                         ("model", self.model)) if v is not None]
        if self.since is not None:
            parts.append(f"since:{fmt_ts(self.since)}")
        if self.until is not None:
            parts.append(f"until:{fmt_ts(self.until)}")
        return " ".join(parts + list(self.text))


_TOKEN = re.compile(r'(\w+):("[^"]*"|\S+)|("[^"]*"|\S+)')
_SCORE = re.compile(r"^(>=|<=|>|<|=)?\s*([0-9]*\.?[0-9]+)$")
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


def _tokens(text: str) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for m in _TOKEN.finditer(text or ""):
        if m.group(1):
            out.append((m.group(1).lower(), m.group(2).strip('"')))
        else:
            out.append((None, m.group(3).strip('"')))
    return out


def _port(v: str) -> int:
    if not v.isdigit() or not 0 <= int(v) <= 65535:
        raise FilterError(f"port:{v} is not a port number")
    return int(v)


def parse_device_filter(text: str) -> DeviceFilter:
    kw: dict = {}
    words: list[str] = []
    for key, val in _tokens(text):
        if key is None:
            words.append(val.lower())
        elif key == "zone":
            kw["zone"] = val.lower()
        elif key == "role":
            kw["role"] = val.lower()
        elif key == "vendor":
            kw["vendor"] = val.lower()
        elif key == "port":
            kw["port"] = _port(val)
        elif key == "score":
            m = _SCORE.match(val)
            if not m:
                raise FilterError(f"score:{val}: write e.g. score:>0.5")
            kw["score_op"], kw["score"] = m.group(1) or ">=", float(m.group(2))
        elif key == "new":
            if val.lower() not in _YES | _NO:
                raise FilterError(f"new:{val}: write new:yes or new:no")
            kw["new"] = val.lower() in _YES
        else:
            raise FilterError(f"unknown filter {key}: (use zone role score port new vendor)")
    return DeviceFilter(text=tuple(words), **kw)


def _time_of_day(v: str, ref: int | None) -> int:
    """'2026-03-03T13:00', '2026-03-03 13:00:00' or '13:00' (on the day of `ref`), as ns."""
    v = v.replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return int(datetime.strptime(v, fmt).replace(tzinfo=UTC).timestamp()) * 1_000_000_000
        except ValueError:
            pass
    for fmt in ("%H:%M:%S", "%H:%M"):
        try:
            t = datetime.strptime(v, fmt)
        except ValueError:
            continue
        day = datetime.fromtimestamp((ref or 0) / 1e9, tz=UTC).replace(hour=0, minute=0, second=0,
                                                                        microsecond=0)
        return int(day.timestamp() + t.hour * 3600 + t.minute * 60 + t.second) * 1_000_000_000
    raise FilterError(f"{v!r} is not a time (write 2026-03-03T13:00 or 13:00)")


def parse_conn_filter(text: str, ref_ts: int | None = None) -> ConnFilter:
    kw: dict = {}
    words: list[str] = []
    for key, val in _tokens(text):
        if key is None:
            words.append(val.lower())
        elif key in ("device", "ip", "host"):
            _addr_params(val)
            kw["device"] = val
        elif key == "port":
            kw["port"] = _port(val)
        elif key in ("proto", "protocol", "app"):
            v = val.lower()
            if v not in APP_IDS and v not in PROTO_NAMES.values():
                raise FilterError(f"proto:{val}: unknown protocol")
            kw["proto"] = v
        elif key == "state":
            kw["state"] = val.lower()
        elif key == "model":
            kw["model"] = val
        elif key in ("since", "from"):
            kw["since"] = _time_of_day(val, ref_ts)
        elif key in ("until", "to"):
            kw["until"] = _time_of_day(val, ref_ts)
        else:
            raise FilterError(f"unknown filter {key}: (use device port proto state model since until)")
    return ConnFilter(text=tuple(words), **kw)


# --------------------------------------------------------------------------- devices

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


@dataclass(frozen=True, slots=True)
class DeviceList:
    rows: tuple[DeviceRow, ...]
    total: int                  # devices in the store, before the filter
    detection: bool


SORT_KEYS = ("score", "address", "name", "vendor", "zone", "role", "first", "breaches")


def _scores(store: Store) -> dict[str, float]:
    """Each device's threat score: its highest hourly score (device_scores), else its best breach."""
    if has_table(store, "device_scores"):
        rows = store.execute("SELECT device, MAX(score) FROM device_scores GROUP BY device").fetchall()
        if rows:
            return {r[0]: float(r[1]) for r in rows if r[1] is not None}
    if has_table(store, "breaches"):
        return {r[0]: float(r[1] or 0) for r in
                store.execute("SELECT device, MAX(score) FROM breaches GROUP BY device")}
    return {}


def _breach_counts(store: Store) -> dict[str, int]:
    """Breaches per device, counting the device that did it and the devices it targeted."""
    out: dict[str, int] = {}
    for devs, dev in store.execute("SELECT devices, device FROM breaches"):
        names = {str(d) for d in _json_list(devs)} | ({dev} if dev else set())
        for d in names:
            out[d] = out.get(d, 0) + 1
    return out


def activity(store: Store, buckets: int = SPARK_BUCKETS) -> dict[tuple[int, int], tuple[int, ...]]:
    """Sessions started per time bucket over the store's span, per address (client or server)."""
    lo_hi = store.execute("SELECT MIN(first_ts), MAX(first_ts) FROM sessions").fetchone()
    if lo_hi[0] is None:
        return {}
    t0, t1 = int(lo_hi[0]), int(lo_hi[1])
    width = max(1, (t1 - t0) // buckets + 1)
    out: dict[tuple[int, int], list[int]] = {}
    for side in ("client", "server"):
        cur = store.execute(
            f"SELECT {side}_hi, {side}_lo, (first_ts - ?) / ?, COUNT(*) FROM sessions"
            f" GROUP BY {side}_hi, {side}_lo, (first_ts - ?) / ?", (t0, width, t0, width))
        for hi, lo, b, n in cur:
            arr = out.setdefault((hi, lo), [0] * buckets)
            arr[min(int(b), buckets - 1)] += n
    return {k: tuple(v) for k, v in out.items()}


def _devices_on_port(store: Store, port: int) -> set[tuple[int, int]]:
    """Addresses of the devices that served `port` or connected to it."""
    idx = {r[0] for r in store.execute("SELECT name FROM sqlite_master WHERE type='index'"
                                       " AND tbl_name='sessions'")}
    if {"sessions_server_port", "sessions_client_port"} <= idx:
        # two index probes per device (schema V3): grows with the devices, not the sessions.
        # One row of JSON back rather than a row per device: a worker thread fetching thousands
        # of rows waits for the UI thread's GIL between rows.
        found = store.execute(
            "SELECT json_group_array(json_array(hi, lo)) FROM devices d WHERE EXISTS (SELECT 1 FROM"
            " sessions INDEXED BY sessions_server_port WHERE server_hi = d.hi AND server_lo = d.lo"
            " AND server_port = ?1) OR EXISTS (SELECT 1 FROM sessions INDEXED BY sessions_client_port"
            " WHERE client_hi = d.hi AND client_lo = d.lo AND server_port = ?1)", (port,)).fetchone()[0]
        return {(hi, lo) for hi, lo in json.loads(found or "[]")}
    rows = store.execute("SELECT DISTINCT client_hi, client_lo, server_hi, server_lo FROM sessions"
                         " WHERE server_port = ?", (port,)).fetchall()
    return {(r[0], r[1]) for r in rows} | {(r[2], r[3]) for r in rows}


@dataclass
class DeviceCache:
    """What `device_list` read last time on one connection, reused while that connection sees no
    commit (PRAGMA data_version) and the sparklines are the same: a new filter or sort then costs a
    pass over the rows in memory instead of reading the store again. One per connection."""
    store: Store | None = None
    key: tuple = ()
    rows: tuple = ()            # (DeviceRow, (hi, lo)) of every device
    detection: bool = False
    ordered: dict = field(default_factory=dict)   # (sort, reverse) -> rows in that order
    on_port: dict = field(default_factory=dict)   # port -> devices on it
    extra: dict = field(default_factory=dict)     # the caller's, emptied with the rest


def _device_rows(store: Store, spark: dict) -> tuple[list[tuple[DeviceRow, tuple[int, int]]], bool]:
    detection = detection_ran(store)
    scores = _scores(store) if detection else {}
    counts = _breach_counts(store) if detection else {}
    lend = learn_end(store)
    known: set[str] | None = None
    if lend is None and has_table(store, "baseline_devices") and detection:
        known = {r[0] for r in store.execute("SELECT device FROM baseline_devices")}
    out = []
    for device, hi, lo, ip, name, vendor, zone, zkind, role, first, last in store.execute(
            "SELECT device, hi, lo, ip, name, vendor, zone, zone_kind, role, first_ts, last_ts FROM devices"):
        if lend is not None:
            new = first is not None and first > lend
        else:
            new = known is not None and device not in known and zkind != "external"
        out.append((DeviceRow(device=device, ip=ip or device, name=name or "", vendor=vendor or "",
                              zone=zone or "", zone_kind=zkind or "", role=role or "", first_ts=first,
                              last_ts=last, breaches=counts.get(device, 0), score=scores.get(device),
                              new=new, activity=spark.get((hi, lo), ())), (hi, lo)))
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
        addrs = {r.device: (_u(hi), _u(lo)) if hi is not None and lo is not None else _addr_key(r.ip)
                 for r, (hi, lo) in cache.rows}
        by = _sort_key(sort, addrs)
        ordered = cache.ordered[(sort, reverse)] = tuple(
            sorted(cache.rows, key=lambda x: by(x[0]), reverse=reverse))
    if flt.empty:
        return DeviceList(rows=tuple(r for r, _ in ordered), total=len(ordered), detection=cache.detection)
    on_port = None
    if flt.port is not None:
        on_port = cache.on_port.get(flt.port)
        if on_port is None:
            on_port = cache.on_port[flt.port] = _devices_on_port(store, flt.port)
    out = tuple(r for r, hl in ordered
                if (on_port is None or hl in on_port) and _device_matches(r, flt, None, hl))
    return DeviceList(rows=out, total=len(ordered), detection=cache.detection)


def _device_matches(r: DeviceRow, f: DeviceFilter, on_port: set | None, key: tuple) -> bool:
    if f.zone and f.zone not in (r.zone.lower(), r.zone_kind.lower()):
        return False
    if f.role and not r.role.lower().startswith(f.role):
        return False
    if f.vendor and f.vendor not in r.vendor.lower():
        return False
    if f.new is not None and r.new != f.new:
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
    hay = f"{r.ip} {r.device} {r.name} {r.vendor} {r.zone} {r.role}".lower()
    return all(w in hay for w in f.text)


def _addr_key(ip: str) -> tuple[int, int]:
    try:
        return text_to_ip(ip)
    except ValueError:
        return (1 << 64, 0)


def _sort_key(sort: str, addrs: dict[str, tuple[int, int]] | None = None):
    def addr_key(r: DeviceRow) -> tuple:
        a = addrs.get(r.device) if addrs is not None else None
        return a if a is not None else _addr_key(r.ip)

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


# --------------------------------------------------------------------------- connections

@dataclass(frozen=True, slots=True)
class ConnRow:
    session_id: int
    first_ts: int
    last_ts: int
    client: str
    client_port: int | None
    server: str
    server_port: int | None
    transport: str
    protocol: str
    state: str
    packets: int
    bytes_c2s: int
    bytes_s2c: int
    facts: str                  # SNI / certificate / RDP cookie, raw (untrusted)
    capture_id: int | None
    frame: int | None           # first packet of the session in its capture


@dataclass(frozen=True, slots=True)
class Connections:
    rows: tuple[ConnRow, ...]
    total: int                  # matching rows (rows is cut to the limit)
    filter: ConnFilter = field(default_factory=ConnFilter)


_CONN_COLS = ("session_id, first_ts, last_ts, client_hi, client_lo, client_port, server_hi, server_lo,"
              " server_port, proto, app, state, pkts_c2s + pkts_s2c, bytes_c2s, bytes_s2c, tls_sni,"
              " tls_no_sni, cert_subject, cert_self_signed, rdp_cookie, first_file, first_frame")


def _conn_row(r: tuple) -> ConnRow:
    (sid, first, last, chi, clo, cport, shi, slo, sport, proto, app, state, pk, bc, bs, sni,
     nosni, subj, selfs, cookie, ffile, fframe) = r
    facts = []
    if sni:
        facts.append(f"sni={sni}")
    elif nosni:
        facts.append("no SNI")
    if subj:
        facts.append(f"cert={subj}" + (" (self-signed)" if selfs else ""))
    if cookie:
        facts.append(f"rdp user={cookie}")
    return ConnRow(session_id=int(sid), first_ts=int(first or 0), last_ts=int(last or 0),
                   client=ip_of(chi, clo), client_port=cport if cport is not None and cport >= 0 else None,
                   server=ip_of(shi, slo), server_port=sport if sport is not None and sport >= 0 else None,
                   transport=PROTO_NAMES.get(proto, str(proto)), protocol=APP_NAMES.get(app or 0, "") or "",
                   state=state or "", packets=int(pk or 0), bytes_c2s=int(bc or 0), bytes_s2c=int(bs or 0),
                   facts="; ".join(facts), capture_id=ffile, frame=fframe)


def _model_sessions(store: Store, model: str) -> list[int] | None:
    """Session ids the breaches of models matching `model` cite as evidence."""
    if not has_table(store, "breach_sessions"):
        return None
    return [int(r[0]) for r in store.execute(
        "SELECT DISTINCT bs.session_id FROM breach_sessions bs JOIN breaches b USING (breach_id)"
        " WHERE LOWER(b.model) LIKE ?", (f"%{model.lower()}%",))]


def connections(store: Store, flt: ConnFilter | None = None, limit: int = 500,
                count: bool = True) -> Connections:
    """Sessions matching `flt`, newest first, at most `limit` of them. `count=False` skips
    counting every match (a scan of a million index entries without a filter): `total` is then
    exact only when fewer than `limit` matched, else -1 (see `count_connections`)."""
    flt = flt or ConnFilter()
    where, params = _conn_where(store, flt)
    sql_where = (" WHERE " + " AND ".join(where)) if where else ""
    rows = store.execute(f"SELECT {_CONN_COLS} FROM sessions{sql_where}"
                         " ORDER BY first_ts DESC, session_id LIMIT ?", (*params, limit)).fetchall()
    if count:
        total = int(store.execute(f"SELECT COUNT(*) FROM sessions{sql_where}", params).fetchone()[0])
    else:
        total = len(rows) if len(rows) < limit else -1
    return Connections(rows=tuple(_conn_row(r) for r in rows), total=total, filter=flt)


def count_connections(store: Store, flt: ConnFilter | None = None) -> int:
    """How many sessions match `flt`."""
    where, params = _conn_where(store, flt or ConnFilter())
    sql_where = (" WHERE " + " AND ".join(where)) if where else ""
    return int(store.execute(f"SELECT COUNT(*) FROM sessions{sql_where}", params).fetchone()[0])


def _conn_where(store: Store, flt: ConnFilter) -> tuple[list[str], list]:
    where: list[str] = []
    params: list = []
    if flt.device:
        hi, lo = _addr_params(flt.device)
        where.append("((client_hi = ? AND client_lo = ?) OR (server_hi = ? AND server_lo = ?))")
        params += [hi, lo, hi, lo]
    if flt.port is not None:
        where.append("server_port = ?")
        params.append(flt.port)
    if flt.proto:
        if flt.proto in APP_IDS:
            where.append("app = ?")
            params.append(APP_IDS[flt.proto])
        else:
            where.append("proto = ?")
            params.append({v: k for k, v in PROTO_NAMES.items()}[flt.proto])
    if flt.state:
        if flt.state == "failed":
            where.append(f"state IN {_FAILED_SQL}")
        else:
            where.append("state = ?")
            params.append(flt.state)
    if flt.since is not None:
        where.append("last_ts >= ?")
        params.append(flt.since)
    if flt.until is not None:
        where.append("first_ts <= ?")
        params.append(flt.until)
    if flt.model:
        ids = _model_sessions(store, flt.model)
        ids = ids or [-1]
        where.append(f"session_id IN ({', '.join('?' * len(ids))})")
        params += ids
    for w in flt.text:
        where.append("(LOWER(COALESCE(tls_sni, '')) LIKE ? OR LOWER(COALESCE(rdp_cookie, '')) LIKE ?"
                     " OR LOWER(COALESCE(cert_subject, '')) LIKE ? OR state = ?)")
        params += [f"%{w}%", f"%{w}%", f"%{w}%", w]
    return where, params


# --------------------------------------------------------------------------- device detail

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


def device_detail(store: Store, device: str, conn_limit: int = 200) -> DeviceDetail | None:
    r = store.execute(
        "SELECT device, hi, lo, ip, mac, vendor, name, name_source, names, zone, zone_kind, vlan, role,"
        " role_reasons, first_ts, last_ts, pkts_sent, pkts_recv, bytes_sent, bytes_recv,"
        " sessions_client, sessions_server, failed_client, peers, ics_used, ics_served"
        " FROM devices WHERE device = ?", (device,)).fetchone()
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
        connections=connections(store, flt, conn_limit) if ip else Connections((), 0))


def _learning(store: Store, dev: str, first: int | None, last: int | None) -> tuple[str, tuple[str, ...]]:
    lend = learn_end(store)
    span = ((last or 0) - (first or 0)) / 3.6e12
    if has_table(store, "baseline_devices"):
        row = store.execute("SELECT maturity, reasons FROM baseline_devices WHERE device = ?",
                            (dev,)).fetchone()
        if row is not None:
            return str(row[0] or "learning"), tuple(s for s in str(row[1] or "").split("; ") if s)
    if lend is not None and first is not None and first > lend:
        return "new", (f"first seen {fmt_ts(first)}, after learning ended {fmt_ts(lend)}",
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
            f" WHERE {me}_hi = ? AND {me}_lo = ? GROUP BY {other}_hi, {other}_lo, server_port, proto, app"
            " ORDER BY COUNT(*) DESC LIMIT ?", (hi, lo, limit))
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
            f" FROM session_ops WHERE {me}_hi = ? AND {me}_lo = ? AND (requests = 1 OR from_client = 1)"
            " GROUP BY cls, app, name ORDER BY cls DESC, SUM(count) DESC", (hi, lo))
        for cls, app, name, n, peers in cur:
            out.append(OpCount(direction=direction, cls=CLASS_NAMES.get(cls, "") or "OTHER",
                               protocol=APP_NAMES.get(app or 0, "") or str(app), name=name or "",
                               count=int(n or 0), peers=int(peers or 0)))
    return tuple(out)


def _device_charts(store: Store, dev: str, hi: int, lo: int, buckets: int = 48) -> tuple[Series, ...]:
    span = store.execute(
        "SELECT MIN(first_ts), MAX(first_ts) FROM sessions WHERE (client_hi = ? AND client_lo = ?)"
        " OR (server_hi = ? AND server_lo = ?)", (hi, lo, hi, lo)).fetchone()
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
            f"SELECT (first_ts - ?) / ?, COUNT(*) FROM sessions WHERE {side}_hi = ? AND {side}_lo = ?"
            f" GROUP BY (first_ts - ?) / ?", (t0, width, hi, lo, t0, width))
        for b, c in cur:
            total[min(int(b), n - 1)] += c
    cur = store.execute(
        "SELECT (first_ts - ?) / ?, server_hi, server_lo, COUNT(*) FROM sessions WHERE client_hi = ?"
        f" AND client_lo = ? AND state IN {_FAILED_SQL} GROUP BY 1, 2, 3", (t0, width, hi, lo))
    for b, shi, slo, c in cur:
        if _is_external(shi, slo):
            failed_ext[min(int(b), n - 1)] += c
    charts = [Series("connections started", ts, tuple(total))]
    if any(failed_ext):
        charts.append(Series("failed external connections", ts, tuple(failed_ext)))
    score = score_series(store, dev)
    if score is not None:
        charts.append(score)
    return tuple(charts)


def _is_external(hi: int, lo: int) -> bool:
    k = addr.classify(np.array([_u(hi)], dtype=np.uint64), np.array([_u(lo)], dtype=np.uint64))
    return int(k[0]) == addr.KIND_GLOBAL


def score_series(store: Store, dev: str) -> Series | None:
    """The device's threat score over time ("mathematical importance"), when stored."""
    if has_table(store, "device_scores") and {"device", "ts", "score"} <= set(columns(store, "device_scores")):
        rows = store.execute("SELECT ts, score FROM device_scores WHERE device = ? ORDER BY ts",
                             (dev,)).fetchall()
        if rows:
            return Series("threat score", tuple(int(r[0]) for r in rows),
                          tuple(float(r[1] or 0) for r in rows))
    return None


# --------------------------------------------------------------------------- breaches & incidents

@dataclass(frozen=True, slots=True)
class BreachRow:
    breach_id: int
    model: str
    first_ts: int | None
    last_ts: int | None
    score: float
    device: str
    devices: tuple[str, ...]
    explanation: str
    phase: str
    attack_ids: tuple[str, ...]
    importance: float | None
    session_ids: tuple[int, ...]
    refs: tuple[tuple[int, int], ...]     # (capture_id, frame) of evidence packets
    incident_id: int | None


@dataclass(frozen=True, slots=True)
class Breaches:
    rows: tuple[BreachRow, ...]
    total: int
    detection: bool
    models: tuple[str, ...] = ()


_BREACH_COLS = ("breach_id, model, first_ts, last_ts, score, device, devices, explanation, phase,"
                " attack_ids, importance, sessions, refs, incident_id")


def _breach_row(r: tuple) -> BreachRow:
    bid, model, first, last, score, dev, devs, expl, phase, attack, imp, sess, refs, inc = r
    return BreachRow(
        breach_id=int(bid), model=model or "", first_ts=first, last_ts=last, score=float(score or 0),
        device=dev or "", devices=tuple(str(d) for d in _json_list(devs)), explanation=expl or "",
        phase=phase or "", attack_ids=tuple(str(x) for x in _json_list(attack)),
        importance=float(imp) if imp is not None else None,
        session_ids=tuple(int(x) for x in _json_list(sess) if isinstance(x, int)),
        refs=tuple((int(x) >> 32, int(x) & 0xFFFFFFFF) for x in _json_list(refs) if isinstance(x, int)),
        incident_id=inc)


def breaches(store: Store, model: str | None = None, device: str | None = None,
             limit: int = 1000, text: tuple[str, ...] = ()) -> Breaches:
    """The model breach log, newest first; `model` matches part of the model name."""
    if not detection_ran(store):
        return Breaches((), 0, False)
    where, params = [], []
    if model:
        where.append("LOWER(model) LIKE ?")
        params.append(f"%{model.lower()}%")
    if device:
        where.append("(device = ? OR devices LIKE ?)")
        params += [device, f'%"{device}"%']
    for w in text:
        where.append("(LOWER(model) LIKE ? OR LOWER(explanation) LIKE ? OR devices LIKE ?)")
        params += [f"%{w}%"] * 3
    sql_where = (" WHERE " + " AND ".join(where)) if where else ""
    total = store.execute(f"SELECT COUNT(*) FROM breaches{sql_where}", params).fetchone()[0]
    rows = store.execute(f"SELECT {_BREACH_COLS} FROM breaches{sql_where}"
                         " ORDER BY first_ts DESC, breach_id LIMIT ?", (*params, limit)).fetchall()
    models = tuple(r[0] for r in store.execute("SELECT DISTINCT model FROM breaches ORDER BY model"))
    return Breaches(tuple(_breach_row(r) for r in rows), int(total), True, models)


def breach(store: Store, breach_id: int) -> BreachRow | None:
    if not has_table(store, "breaches"):
        return None
    r = store.execute(f"SELECT {_BREACH_COLS} FROM breaches WHERE breach_id = ?", (breach_id,)).fetchone()
    return _breach_row(r) if r else None


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    attack_ids: tuple[str, ...]
    first_ts: int | None
    last_ts: int | None
    models: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    ts: int | None
    phase: str
    model: str
    device: str
    explanation: str
    breach_id: int | None


@dataclass(frozen=True, slots=True)
class IncidentRow:
    incident_id: int
    title: str
    score: float
    device: str
    first_ts: int | None
    last_ts: int | None
    devices: tuple[str, ...]
    attack_ids: tuple[str, ...]
    phases: tuple[Phase, ...]
    narrative: str
    timeline: tuple[TimelineEntry, ...]
    breaches: int


@dataclass(frozen=True, slots=True)
class Incidents:
    rows: tuple[IncidentRow, ...]
    detection: bool


_INCIDENT_COLS = ("incident_id, title, score, device, first_ts, last_ts, devices, attack_ids, phases,"
                  " narrative, timeline, breaches")


def _incident_row(r: tuple) -> IncidentRow:
    iid, title, score, dev, first, last, devs, attack, phases, narrative, timeline, n = r
    ph = tuple(Phase(name=str(p.get("phase") or p.get("name") or ""),
                     attack_ids=tuple(str(x) for x in p.get("attack_ids") or ()),
                     first_ts=p.get("first_ts"), last_ts=p.get("last_ts"),
                     models=tuple(str(x) for x in p.get("models") or ()))
               for p in _json_list(phases) if isinstance(p, dict))
    tl = tuple(TimelineEntry(ts=e.get("ts"), phase=str(e.get("phase") or ""), model=str(e.get("model") or ""),
                             device=str(e.get("device") or ""), explanation=str(e.get("explanation") or ""),
                             breach_id=e.get("breach_id"))
               for e in _json_list(timeline) if isinstance(e, dict))
    return IncidentRow(incident_id=int(iid), title=title or "", score=float(score or 0), device=dev or "",
                       first_ts=first, last_ts=last, devices=tuple(str(d) for d in _json_list(devs)),
                       attack_ids=tuple(str(x) for x in _json_list(attack)), phases=ph,
                       narrative=narrative or "", timeline=tl, breaches=int(n or 0))


def incidents(store: Store) -> Incidents:
    """The analyst's incidents, highest score first."""
    if not has_table(store, "incidents") or not detection_ran(store):
        return Incidents((), False)
    rows = store.execute(f"SELECT {_INCIDENT_COLS} FROM incidents ORDER BY score DESC, first_ts DESC")
    return Incidents(tuple(_incident_row(r) for r in rows.fetchall()), True)


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    incident: IncidentRow
    breaches: tuple[BreachRow, ...]
    summaries: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # title, (label, value) rows


def incident_detail(store: Store, incident_id: int) -> IncidentDetail | None:
    if not has_table(store, "incidents"):
        return None
    r = store.execute(f"SELECT {_INCIDENT_COLS} FROM incidents WHERE incident_id = ?",
                      (incident_id,)).fetchone()
    if r is None:
        return None
    inc = _incident_row(r)
    rows = store.execute(f"SELECT {_BREACH_COLS} FROM breaches WHERE incident_id = ?"
                         " ORDER BY first_ts, breach_id", (incident_id,)).fetchall()
    return IncidentDetail(inc, tuple(_breach_row(b) for b in rows), _incident_summaries(store, inc))


def _incident_summaries(store: Store, inc: IncidentRow) -> tuple:
    """The seed's figures 2 and 3: the largest upload and the scanning, for the incident's devices."""
    out = []
    for dev in inc.devices[:3]:
        try:
            hi, lo = _addr_params(dev)
        except FilterError:
            continue
        span = (inc.first_ts or 0, inc.last_ts or (1 << 62))
        up = store.execute(
            "SELECT server_hi, server_lo, server_port, app, SUM(bytes_c2s), COUNT(*) FROM sessions"
            " WHERE client_hi = ? AND client_lo = ? AND first_ts BETWEEN ? AND ?"
            " GROUP BY server_hi, server_lo, server_port ORDER BY SUM(bytes_c2s) DESC LIMIT 1",
            (hi, lo, *span)).fetchone()
        if up and up[4]:
            out.append((f"Largest upload from {dev}", (
                ("to", f"{ip_of(up[0], up[1])} port {up[2]} ({APP_NAMES.get(up[3] or 0, '') or 'tcp'})"),
                ("bytes sent", f"{int(up[4]):,} in {up[5]} connections"))))
        scan = store.execute(
            "SELECT COUNT(*), COUNT(DISTINCT server_hi || ':' || server_lo), GROUP_CONCAT(DISTINCT server_port),"
            f" SUM(state IN {_FAILED_SQL}), MIN(first_ts), MAX(last_ts) FROM sessions"
            " WHERE client_hi = ? AND client_lo = ? AND first_ts BETWEEN ? AND ?", (hi, lo, *span)).fetchone()
        if scan and scan[3]:
            ports = sorted({int(p) for p in (scan[2] or "").split(",") if p.lstrip("-").isdigit() and int(p) >= 0})
            out.append((f"Scanning by {dev}", (
                ("connections", f"{scan[0]:,} to {scan[1]} hosts, {scan[3]:,} failed"),
                ("ports", ", ".join(map(str, ports[:20])) + (" ..." if len(ports) > 20 else "")),
                ("from", f"{fmt_ts(scan[4])} to {fmt_ts(scan[5])}"))))
    return tuple(out)


# --------------------------------------------------------------------------- packets

@dataclass(frozen=True, slots=True)
class PacketRef:
    capture_id: int
    frame: int
    path: str | None            # None: the capture is not in the store


def packet_ref(store: Store, capture_id: int, frame: int) -> PacketRef:
    r = store.execute("SELECT path FROM captures WHERE capture_id = ?", (capture_id,)).fetchone()
    return PacketRef(capture_id, frame, r[0] if r else None)
