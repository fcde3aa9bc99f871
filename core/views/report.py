"""What `plantwatch analyze` reports, read back from the store as plain data (dicts and lists).

The same dict feeds the human summary and `--json`; `--jsonl` flattens it into one record per
line. The shapes are documented in core/data/analyze.schema.json.

Models: the store holds model ids; `model` (and `name` in detection.models, `models` in an
incident's phases) stays the model's title, as before ids existed, so readers of the JSON keep
working; `model_id` (`id`) carries the stable id beside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from plantwatch.core.capture.refs import SQL_PACK, PacketRef
from plantwatch.core.decode.addr import ip_to_text, mac_to_text
from plantwatch.core.decode.schema import APP_NAMES, CLASS_NAMES
from plantwatch.core.detection.models import model_id, title_of
from plantwatch.core.flows.sessions import FAILED_STATES
from plantwatch.core.store.database import Store
from plantwatch.core.views.console.identity import cpes, device_identity, vulnerabilities

REPORT_VERSION = 1
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
_FAILED_SQL = "(" + ", ".join(f"'{s}'" for s in sorted(FAILED_STATES)) + ")"


def iso(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _u(v: int | None) -> int:
    """A stored signed 64-bit value back to unsigned."""
    return 0 if v is None else v & 0xFFFF_FFFF_FFFF_FFFF


def _ip(hi: int | None, lo: int | None) -> str:
    return ip_to_text(_u(hi), _u(lo))


def iter_devices(store: Store) -> Iterator[dict[str, Any]]:
    """The inventory, one device at a time, read from the cursor as it goes: a store of any size
    costs the memory of one device (plus the few that stated an identity)."""
    identified = {d for (d,) in store.execute("SELECT DISTINCT device FROM device_identity WHERE site = ?",
                                              (store.site,))}
    found = vulnerabilities(store) if identified else {}
    cur = store.execute(
        "SELECT device, ip, mac, name, vendor, zone, zone_kind, vlan, role, role_reasons, first_ts, last_ts,"
        " pkts_sent, pkts_recv, bytes_sent, bytes_recv, sessions_client, sessions_server, failed_client,"
        " peers, ics_used, ics_served, read_ops, discover_ops, action_ops, reprogram_ops"
        " FROM devices WHERE site = ? ORDER BY CASE zone_kind WHEN 'external' THEN 1 ELSE 0 END, hi, lo, device",
        (store.site,))
    for r in cur:
        (device, ip, mac, name, vendor, zone, zone_kind, vlan, role, reasons, first, last,
         ps, pr, bs, br, sc, ss, fc, peers, used, served, rd, dc, ac, rp) = r
        d = {
            "device": device, "address": ip, "mac": mac_to_text(mac) if mac is not None else None,
            "name": name, "vendor": vendor, "zone": zone, "zone_kind": zone_kind, "vlan": vlan,
            "role": role, "role_reasons": [s for s in (reasons or "").split("; ") if s],
            "first_seen": iso(first), "last_seen": iso(last),
            "packets_sent": ps, "packets_received": pr, "bytes_sent": bs, "bytes_received": br,
            "sessions_as_client": sc, "sessions_as_server": ss, "failed_as_client": fc, "peers": peers,
            "ics_protocols_used": json.loads(used or "[]"), "ics_protocols_served": json.loads(served or "[]"),
            "ics_operations_sent": {"READ": rd, "DISCOVER": dc, "ACTION": ac, "REPROGRAM": rp},
        }
        if device in identified:
            _add_identity(store, d, found)
        yield d


def devices(store: Store) -> list[dict[str, Any]]:
    return list(iter_devices(store))


def _add_identity(store: Store, d: dict[str, Any], found: dict[str, list]) -> None:
    """Identity from the wire, CPE names and matching advisories, on a device that stated one."""
    attrs = device_identity(store, d["device"])
    if not attrs:
        return
    d["identity"] = [{
        "component": a.component, "attribute": a.attribute, "value": a.value, "source": a.source,
        "first_seen": iso(a.first_ts), "last_seen": iso(a.last_ts), "first_packet": _packet(a.first_ref),
        "last_packet": _packet(a.last_ref), "answers": a.seen} for a in attrs]
    d["cpe"] = [{"component": c, "names": n} for c, n in cpes(store, d["device"]).items()]
    d["vulnerabilities"] = [{
        "cve": v.cve, "cvss": v.cvss, "advisory_id": v.advisory_id, "component": v.component,
        "vendor": v.vendor, "product": v.product, "affected_versions": v.versions,
        "firmware": v.firmware or None, "title": v.title, "url": v.url} for v in found.get(d["device"], [])]


def sessions_by_protocol(store: Store) -> list[dict[str, Any]]:
    cur = store.execute(
        "SELECT app, proto, COUNT(*), SUM(pkts_c2s + pkts_s2c), SUM(bytes_c2s + bytes_s2c),"
        f" SUM(state IN {_FAILED_SQL}), MIN(first_ts), MAX(last_ts)"
        # one pass over the table: through sessions_app (the planner's pick) every row is a
        # second lookup, 3x the CPU
        " FROM sessions NOT INDEXED WHERE site = ? GROUP BY app, proto ORDER BY COUNT(*) DESC, app, proto",
        (store.site,))
    return [{
        "protocol": APP_NAMES.get(app, str(app)) or PROTO_NAMES.get(proto, str(proto)),
        "transport": PROTO_NAMES.get(proto, str(proto)), "sessions": n, "packets": pk, "bytes": by,
        "failed": failed, "first_seen": iso(first), "last_seen": iso(last),
    } for app, proto, n, pk, by, failed, first, last in cur.fetchall()]


def ics_operations(store: Store) -> list[dict[str, Any]]:
    return list(iter_ics_operations(store))


def iter_ics_operations(store: Store) -> Iterator[dict[str, Any]]:
    """Operations sent (requests and other PDUs the sender originates), by class and source."""
    cur = store.execute(
        "SELECT src_hi, src_lo, cls, app, code, name, SUM(count), COUNT(DISTINCT dst_hi || ':' || dst_lo),"
        " SUM(exceptions), MIN(" + SQL_PACK.format(capture="first_file", frame="first_frame") + ")"
        " FROM session_ops WHERE (requests = 1 OR from_client = 1) AND site = ?"
        " GROUP BY src_hi, src_lo, cls, app, code, name ORDER BY src_hi, src_lo, cls DESC, app, code", (store.site,))
    for hi, lo, cls, app, code, name, count, targets, exc, ref in cur:
        yield {
            "source": _ip(hi, lo), "class": CLASS_NAMES.get(cls, "") or "OTHER",
            "protocol": APP_NAMES.get(app, str(app)), "code": code, "name": name, "count": count,
            "targets": targets, "exceptions": exc,
            "first_packet": _packet(ref),
        }


def failed_connections(store: Store) -> list[dict[str, Any]]:
    return list(iter_failed_connections(store))


def iter_failed_connections(store: Store) -> Iterator[dict[str, Any]]:
    """Failed sessions by client, most first: one SQL aggregate, rows read as they come."""
    cur = store.execute(
        "SELECT client_hi, client_lo, COUNT(*), SUM(state = 'refused'), SUM(state = 'unanswered'),"
        " SUM(state = 'unreachable'), COUNT(DISTINCT server_hi || ':' || server_lo),"
        " GROUP_CONCAT(DISTINCT server_port), MIN(first_ts), MAX(last_ts)"
        f" FROM sessions WHERE state IN {_FAILED_SQL} AND site = ? GROUP BY client_hi, client_lo ORDER BY COUNT(*) DESC",
        (store.site,))
    for hi, lo, n, refused, unanswered, unreach, targets, ports, first, last in cur:
        port_list = sorted({int(p) for p in (ports or "").split(",") if p not in ("", "-1")})
        yield {
            "source": _ip(hi, lo), "failed": n, "refused": refused, "unanswered": unanswered,
            "unreachable": unreach, "targets": targets, "ports": port_list,
            "first_seen": iso(first), "last_seen": iso(last),
        }


def captures(store: Store) -> list[dict[str, Any]]:
    cur = store.execute("SELECT capture_id, path, packets, first_ts, last_ts, status, warnings"
                        " FROM captures WHERE site = ? ORDER BY capture_id", (store.site,))
    return [{"capture_id": cid, "path": path, "packets": n, "first_packet": iso(first),
             "last_packet": iso(last), "status": status, "warnings": json.loads(w or "[]")}
            for cid, path, n, first, last, status, w in cur.fetchall()]


def _packet(ref: int) -> dict[str, int]:
    p = PacketRef.unpack(ref)
    return {"capture_id": p.capture_id, "frame": p.frame}


def _packets(refs: list[int]) -> list[dict[str, int]]:
    return [_packet(r) for r in refs]


def _model(stored: str) -> tuple[str, str]:
    """(title, id) of a stored model (an id; a title in a store not migrated yet)."""
    mid = model_id(stored) or stored
    return title_of(mid), mid


def breaches(store: Store) -> list[dict[str, Any]]:
    """Model breaches, in time order (core/detection/detector.py writes them)."""
    cur = store.execute(
        "SELECT breach_id, model, category, severity, phase, attack_ids, device, devices, first_ts, last_ts,"
        " score, importance, explanation, sessions, refs, details, incident_id FROM breaches"
        " WHERE site = ? ORDER BY first_ts, breach_id", (store.site,))
    rows = sorted(cur.fetchall(), key=lambda r: (r[8], _model(r[1])[0], r[0]))  # time, title, id
    out = []
    for (bid, model, cat, sev, phase, attack, dev, devs, first, last, score, imp, expl, sess, refs,
         details, iid) in rows:
        title, mid = _model(model)
        out.append({
            "breach_id": bid, "model": title, "model_id": mid, "category": cat, "severity": sev, "phase": phase,
            "attack_ids": json.loads(attack or "[]"), "device": dev, "devices": json.loads(devs or "[]"),
            "first_seen": iso(first), "last_seen": iso(last), "score": score, "importance": imp,
            "explanation": expl,
            "evidence": {"sessions": json.loads(sess or "[]"), "packets": _packets(json.loads(refs or "[]"))},
            "details": json.loads(details or "{}"), "incident_id": iid,
        })
    return out


def incidents(store: Store) -> list[dict[str, Any]]:
    cur = store.execute(
        "SELECT incident_id, title, device, devices, first_ts, last_ts, score, phases, attack_ids, narrative,"
        " timeline, breaches FROM incidents WHERE site = ? ORDER BY score DESC, first_ts, incident_id", (store.site,))
    out = []
    for iid, title, dev, devs, first, last, score, phases, attack, narrative, timeline, n in cur.fetchall():
        out.append({
            "incident_id": iid, "title": title, "device": dev, "devices": json.loads(devs or "[]"),
            "first_seen": iso(first), "last_seen": iso(last), "score": score,
            "phases": [{"phase": p["phase"], "first_seen": iso(p["first_ts"]), "last_seen": iso(p["last_ts"]),
                        "models": [_model(m)[0] for m in p["models"]], "attack_ids": p["attack_ids"]}
                       for p in json.loads(phases or "[]")],
            "attack_ids": json.loads(attack or "[]"), "narrative": narrative,
            "timeline": [{"time": iso(t["ts"]), "phase": t["phase"], "model": _model(t["model"])[0],
                          "model_id": _model(t["model"])[1], "device": t["device"], "score": t["score"],
                          "explanation": t["explanation"], "breach_id": t["breach_id"]}
                         for t in json.loads(timeline or "[]")],
            "breaches": n,
        })
    return out


def threat(store: Store) -> list[dict[str, Any]]:
    """Devices by their peak threat score (device_scores), highest first."""
    cur = store.execute(
        "SELECT device, MAX(score), SUM(breaches), MIN(ts) FROM device_scores WHERE site = ? GROUP BY device"
        " ORDER BY MAX(score) DESC, device", (store.site,))
    return [{"device": d, "score": s, "breach_hours": n, "first_seen": iso(t)} for d, s, n, t in cur.fetchall()]


def detection(store: Store) -> dict[str, Any]:
    meta = dict(store.execute("SELECT name, value FROM baseline_meta WHERE site = ?", (store.site,)).fetchall())
    judged = meta.get("judged_with", "")
    models = {_model(k)[1]: st for k, st in json.loads(meta.get("models", "{}")).items()}
    counts: dict[str, int] = {}
    for m, n in store.execute("SELECT model, COUNT(*) FROM breaches WHERE site = ? GROUP BY model",
                              (store.site,)).fetchall():
        counts[_model(m)[1]] = counts.get(_model(m)[1], 0) + n
    return {
        "baseline_hours": float(meta.get("hours", 0) or 0),
        # what the last detection judged with (the baseline grows with each run afterwards)
        "baseline": judged.split(":", 1)[0].split(" ", 1)[0] if judged else meta.get("maturity", "learning"),
        "baseline_statement": judged or meta.get("maturity_text", meta.get("maturity", "learning")),
        "models": [{"name": title_of(m), "id": m, "state": st, "breaches": counts.get(m, 0)}
                   for m, st in models.items()],
    }


# The lists that grow with what the store holds (one row per device or per source): `build(lazy=True)`
# gives them as iterators over open cursors, for writers that stream (core/views/report_stream.py).
LAZY = ("devices", "ics_operations", "failed_connections")


def build(store: Store, *, lazy: bool = False) -> dict[str, Any]:
    """The report. `lazy`: the LAZY lists are iterators reading the store as they are consumed
    (consume them, in order, before the store is written or closed); the rest is plain data."""
    from plantwatch.core.views import triage_report

    in_force, incs, triage = triage_report.apply(store, breaches(store), incidents(store))
    out: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "captures": captures(store),
        "devices": iter_devices(store) if lazy else devices(store),
        "sessions_by_protocol": sessions_by_protocol(store),
        "ics_operations": iter_ics_operations(store) if lazy else ics_operations(store),
        "failed_connections": iter_failed_connections(store) if lazy else failed_connections(store),
        "detection": detection(store),
        "breaches": in_force,
        "incidents": incs,
        "threat": threat(store),
    }
    if triage is not None:
        out["triage"] = triage
    return out


def jsonl_records(report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One record per line, each tagged with its `type`, in order (lazy lists read as they go)."""
    kinds = {"captures": "capture", "devices": "device", "sessions_by_protocol": "protocol",
             "ics_operations": "operation", "failed_connections": "failed", "breaches": "breach",
             "incidents": "incident", "threat": "threat"}
    yield {"type": "report", "report_version": report["report_version"]}
    for key, kind in kinds.items():
        for row in report[key]:
            yield {"type": kind, **row}
    if "triage" in report:   # covered breaches keep their record type; the rest is one record
        t = report["triage"]
        for row in t["suppressed"]:
            yield {"type": "breach", **row}
        yield {"type": "triage", **{k: v for k, v in t.items() if k != "suppressed"}}
