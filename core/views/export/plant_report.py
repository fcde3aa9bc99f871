"""`plantwatch report --html`: the plant at a glance for a plant manager, as one offline HTML page.

Inventory by zone and role, incidents, breaches by model and by device, top talkers, the learning
state and the threat chart. `since` limits incidents, breaches and talkers to what started at or
after that packet time; it is ISO (`2026-03-04`, `2026-03-04T13:00`) or a span back from the
store's last packet (`24h`, `7d`) — packet time, never the wall clock.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from plantwatch.core.decode.addr import ip_to_text
from plantwatch.core.store.database import Store
from plantwatch.core.views import report
from plantwatch.core.views.export.attack import technique
from plantwatch.core.views.export.bundle import threat_series
from plantwatch.core.views.export.evidence import ExportError
from plantwatch.core.views.export.render import render
from plantwatch.core.views.export.svg import HOUR_NS, threat_svg

TOP = 15
DEVICE_ROWS = 500
_SPAN = re.compile(r"^(\d+)\s*([hdw])$")


def last_packet_ns(store: Store) -> int | None:
    r = store.execute("SELECT MAX(last_ts) FROM captures WHERE site = ?", (store.site,)).fetchone()
    return int(r[0]) if r and r[0] is not None else None


def parse_since(text: str, last_ns: int | None) -> int:
    """ns of packet time for `--since`; raises ValueError with a one-line reason."""
    t = text.strip()
    m = _SPAN.match(t.lower())
    if m:
        if last_ns is None:
            raise ValueError(f"--since {t}: the store has no packets to count back from")
        mult = {"h": 1, "d": 24, "w": 168}[m.group(2)]
        return last_ns - int(m.group(1)) * mult * HOUR_NS
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {t}: give an ISO date or time (2026-03-04, 2026-03-04T13:00, UTC) "
                         "or a span back from the last packet (24h, 7d)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def _after(iso: str | None, since_iso: str | None) -> bool:
    return since_iso is None or (iso is not None and iso >= since_iso)


def _talkers(store: Store, since_ns: int | None) -> list[dict[str, Any]]:
    """Devices by bytes sent and received (sessions since `since_ns`, else the whole inventory).
    With `since_ns`, `sessions` counts the device's distinct (client, server) pairs since then;
    SQLite sums them (temporary b-trees on disk past its cache), only the top rows come out."""
    if since_ns is None:
        rows = store.execute(
            "SELECT device, name, role, zone, bytes_sent, bytes_recv, sessions_client + sessions_server"
            " FROM devices WHERE site = ? ORDER BY bytes_sent + bytes_recv DESC, device LIMIT ?",
            (store.site, TOP)).fetchall()
        return [{"device": d, "name": n, "role": r, "zone": z, "bytes_sent": bs or 0, "bytes_received": br or 0,
                 "sessions": s or 0} for d, n, r, z, bs, br, s in rows]
    top = store.execute(
        "WITH pairs AS (SELECT client_hi AS ch, client_lo AS cl, server_hi AS sh, server_lo AS sl,"
        " COALESCE(SUM(bytes_c2s), 0) AS up, COALESCE(SUM(bytes_s2c), 0) AS down FROM sessions"
        " WHERE first_ts >= ? AND site = ? GROUP BY client_hi, client_lo, server_hi, server_lo)"
        " SELECT hi, lo, SUM(sent), SUM(recv), COUNT(*) FROM ("
        "  SELECT ch AS hi, cl AS lo, up AS sent, down AS recv FROM pairs"
        "  UNION ALL SELECT sh, sl, down, up FROM pairs)"
        " GROUP BY hi, lo ORDER BY SUM(sent) + SUM(recv) DESC, hi, lo LIMIT ?", (since_ns, store.site, TOP)).fetchall()
    out = []
    for hi, lo, sent, recv, n in top:
        d = ip_to_text(hi & 0xFFFF_FFFF_FFFF_FFFF, lo & 0xFFFF_FFFF_FFFF_FFFF)
        row = store.execute("SELECT name, role, zone FROM devices WHERE device = ? AND site = ?",
                            (d, store.site)).fetchone()
        name, role, zone = row if row else (None, None, None)
        out.append({"device": d, "name": name, "role": role, "zone": zone, "bytes_sent": sent,
                    "bytes_received": recv, "sessions": n})
    return out


def _zones(store: Store) -> tuple[list[dict[str, Any]], list[str], int]:
    """Devices by zone (its name, else its kind) and role, counted in SQL; the roles; the total."""
    by_zone: dict[str, Counter] = {}
    for zone, role, n in store.execute(
            "SELECT COALESCE(NULLIF(zone, ''), NULLIF(zone_kind, ''), 'unknown'),"
            " COALESCE(NULLIF(role, ''), 'unknown'), COUNT(*) FROM devices WHERE site = ? GROUP BY 1, 2",
            (store.site,)):
        by_zone.setdefault(zone, Counter())[role] += n
    roles = sorted({r for c in by_zone.values() for r in c})
    zones = [{"zone": z, "total": sum(c.values()), "roles": {r: c.get(r, 0) for r in roles}}
             for z, c in sorted(by_zone.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))]
    return zones, roles, sum(z["total"] for z in zones)


def report_data(store: Store, since_ns: int | None = None) -> dict[str, Any]:
    since_iso = report.iso(since_ns) if since_ns is not None else None
    zones, roles, total = _zones(store)
    listed = report.iter_devices(store)   # the first DEVICE_ROWS, in the report's order
    devices = list(islice(listed, DEVICE_ROWS))
    listed.close()
    incidents = [i for i in report.incidents(store) if _after(i["first_seen"], since_iso)]
    for i in incidents:
        i["techniques"] = [technique(t) for t in i["attack_ids"]]
    breaches = [b for b in report.breaches(store) if _after(b["first_seen"], since_iso)]
    by_model = Counter((b["model"], b["model_id"]) for b in breaches)
    by_device = Counter(b["device"] for b in breaches)
    peak: dict[str, float] = {}
    for b in breaches:
        peak[b["device"]] = max(peak.get(b["device"], 0.0), float(b["score"]))
    det = report.detection(store)
    maturity = dict(store.execute("SELECT maturity, COUNT(*) FROM baseline_devices WHERE site = ? GROUP BY maturity",
                                  (store.site,)).fetchall())
    caps = report.captures(store)
    last = last_packet_ns(store)
    chart = ""
    first_score = store.execute("SELECT MIN(ts) FROM device_scores WHERE site = ?", (store.site,)).fetchone()[0]
    if breaches and last is not None and first_score is not None:
        start = since_ns if since_ns is not None else int(first_score)
        start -= start % HOUR_NS
        series = threat_series(store, sorted(by_device), start, last)
        chart = threat_svg(series, start, last)
    return {
        "since": since_iso,
        "first_packet": min((c["first_packet"] for c in caps if c["first_packet"]), default=None),
        "last_packet": max((c["last_packet"] for c in caps if c["last_packet"]), default=None),
        "captures": len(caps), "packets": sum(c["packets"] or 0 for c in caps),
        "devices_total": total, "zones": zones, "roles": roles,
        "devices": devices, "devices_more": total - len(devices),
        "incidents": incidents, "breaches": len(breaches),
        "by_model": [{"model": m, "model_id": mid, "breaches": n}
                     for (m, mid), n in sorted(by_model.items(), key=lambda kv: (-kv[1], kv[0]))],
        "by_device": [{"device": d, "breaches": n, "peak": peak[d]}
                      for d, n in sorted(by_device.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]],
        "talkers": _talkers(store, since_ns),
        "learning": {"baseline": det["baseline"], "hours": det["baseline_hours"],
                     "models": sorted(det["models"], key=lambda m: m["id"]),
                     "mature_devices": maturity.get("mature", 0), "learning_devices": maturity.get("learning", 0)},
        "chart": chart,
    }


def write_report(store: Store, out: str, since_ns: int | None = None) -> dict[str, Any]:
    data = report_data(store, since_ns)
    html = render("export_report.html.j2", r=data, store_name=store.path.rsplit("/", 1)[-1])
    try:
        with open(out, "w", encoding="utf-8") as f:
            f.write(html)
    except OSError as e:
        raise ExportError(f"{out}: cannot write the report ({e.strerror or e})") from None
    return data


__all__ = ["parse_since", "report_data", "write_report", "last_packet_ns"]
