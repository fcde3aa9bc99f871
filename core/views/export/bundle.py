"""`plantwatch export incident`: everything an analyst hands over about one incident, in a folder.

- `report.html`: self-contained (inline CSS and SVG, no script, no network): narrative, phases
  with ATT&CK for ICS technique ids and names, timeline, each breach with its explanation and
  baseline numbers, the devices with identity and role reasons, the threat chart;
- `evidence.pcapng`: every packet of the evidence sessions, commented with its breaches;
- `incident.json`: the incident, its breaches and devices as data;
- `baselines.json`: what the baseline knew of the involved devices when exported;
- `SHA256SUMS`: the digests of the files above (`sha256sum -c SHA256SUMS`).

Nothing depends on the wall clock, the host or the order rows come out of SQLite: the same store
gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from plantwatch.core.decode.addr import ip_to_text, text_to_ip
from plantwatch.core.decode.schema import APP_NAMES, CLASS_NAMES
from plantwatch.core.store.database import Store
from plantwatch.core.store.writers import load_baseline
from plantwatch.core.views import report
from plantwatch.core.views.export.attack import technique
from plantwatch.core.views.export.evidence import ExportError, evidence_breaches, write_evidence
from plantwatch.core.views.export.render import render
from plantwatch.core.views.export.svg import HOUR_NS, threat_svg
from plantwatch.core.views.textsafe import printable

FILES = ("report.html", "evidence.pcapng", "incident.json", "baselines.json")
CHART_DEVICES = 6


@dataclass(frozen=True, slots=True)
class BundleResult:
    out: Path
    files: tuple[str, ...]
    packets: int
    sessions: int
    breaches: int


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def threat_series(store: Store, devices: Sequence[str], start_ns: int, end_ns: int,
                  top: int = CHART_DEVICES) -> list[tuple[str, list[tuple[int, float]]]]:
    """Hourly threat scores of the `top` devices (by peak in the span) among `devices`."""
    wanted = set(devices)
    rows = store.execute("SELECT device, ts, score FROM device_scores WHERE ts BETWEEN ? AND ? AND site = ?"
                         " ORDER BY device, ts", (start_ns, end_ns, store.site)).fetchall()
    by_dev: dict[str, list[tuple[int, float]]] = {}
    for d, ts, s in rows:
        if d in wanted:
            by_dev.setdefault(d, []).append((int(ts), round(float(s), 4)))
    ranked = sorted(by_dev, key=lambda d: (-max(s for _, s in by_dev[d]), d))[:top]
    return [(d, by_dev[d]) for d in ranked]


def chart_span(first_ns: int, last_ns: int) -> tuple[int, int]:
    """The hours shown around an incident: from 6 h before it to 2 h after."""
    start = first_ns - 6 * HOUR_NS
    return start - start % HOUR_NS, last_ns + 2 * HOUR_NS


def _addr(device: str) -> tuple[int, int] | None:
    try:
        return text_to_ip(device)
    except ValueError:
        return None


def baseline_snapshot(store: Store, devices: Sequence[str]) -> dict[str, Any]:
    """What the baseline knew of `devices`: its summary row, and the pairs, ICS operations,
    volumes, RDP users and TLS fingerprints each took part in (sorted, texts not addresses)."""
    meta = dict(store.execute("SELECT name, value FROM baseline_meta WHERE site = ?", (store.site,)).fetchall())
    rows = {r[0]: r for r in store.execute(
        "SELECT device, maturity, reasons, first_ts, last_ts, sessions, peers, ports_used, ports_served,"
        " ics_ops FROM baseline_devices WHERE site = ?", (store.site,))}
    bl = load_baseline(store)
    addrs = {d: a for d in devices if (a := _addr(d)) is not None}
    keys = pl.DataFrame({"hi": [a[0] for a in addrs.values()], "lo": [a[1] for a in addrs.values()]},
                        schema={"hi": pl.UInt64, "lo": pl.UInt64})

    def involving(df: pl.DataFrame, a: tuple[str, str], b: tuple[str, str] | None) -> list[dict]:
        if df.height == 0 or keys.height == 0:
            return []
        hit = df.join(keys, left_on=list(a), right_on=["hi", "lo"], how="semi")
        if b is not None:
            hit = pl.concat([hit, df.join(keys, left_on=list(b), right_on=["hi", "lo"], how="semi")]).unique()
        out = []
        for r in hit.iter_rows(named=True):
            row = {k: v for k, v in r.items() if not k.endswith(("_hi", "_lo"))}
            for side in (a, b):
                if side is not None:
                    row[side[0][:-3]] = ip_to_text(r[side[0]], r[side[1]])
            if "app" in row:
                row["app"] = APP_NAMES.get(row["app"], str(row["app"])) or None
            if "cls" in row:
                row["cls"] = CLASS_NAMES.get(row["cls"], "") or "OTHER"
            out.append(row)
        return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))

    per_device = {}
    for d in sorted(devices, key=lambda d: (_addr(d) or (1 << 64, 0), d)):
        r = rows.get(d)
        per_device[d] = None if r is None else {
            "maturity": r[1], "reasons": r[2], "first_seen": report.iso(r[3]), "last_seen": report.iso(r[4]),
            "sessions": r[5], "peers": r[6], "ports_used": json.loads(r[7] or "[]"),
            "ports_served": json.loads(r[8] or "[]"), "ics_operations": r[9]}
    return {
        "baseline": {"maturity": meta.get("maturity", "learning"), "hours": float(meta.get("hours", 0) or 0),
                     "first_seen": report.iso(int(meta["first_ts"])) if meta.get("first_ts") else None,
                     "last_seen": report.iso(int(meta["last_ts"])) if meta.get("last_ts") else None},
        "devices": per_device,
        "edges": involving(bl.edges, ("c_hi", "c_lo"), ("s_hi", "s_lo")),
        "ics_operations": involving(bl.ops, ("src_hi", "src_lo"), ("dst_hi", "dst_lo")),
        "volumes": involving(bl.vol, ("c_hi", "c_lo"), ("s_hi", "s_lo")),
        "rdp_users": involving(bl.rdp, ("c_hi", "c_lo"), ("s_hi", "s_lo")),
        "tls_fingerprints": involving(bl.ja3, ("c_hi", "c_lo"), None),
    }


def incident_data(store: Store, incident_id: int) -> dict[str, Any]:
    """The incident, its breaches (time order) and its devices (incident order), as report dicts,
    with ATT&CK technique names. Raises ExportError when the store has no such incident."""
    incidents = report.incidents(store)
    inc = next((i for i in incidents if i["incident_id"] == incident_id), None)
    if inc is None:
        known = "; ".join(f"{i['incident_id']} ({printable(i['title'], 60)})" for i in incidents[:5])
        raise ExportError(f"{store.path}: no incident {incident_id}; "
                          + (f"its incidents, highest score first: {known}" if known else "it holds no incident"))
    breaches = [b for b in report.breaches(store) if b["incident_id"] == incident_id]
    known = {d["device"]: d for d in report.devices(store)}
    blank = dict.fromkeys(("mac", "name", "vendor", "zone", "zone_kind", "role", "first_seen", "last_seen"))
    devices = [known.get(d) or {**blank, "device": d, "address": d, "role_reasons": []} for d in inc["devices"]]
    for p in inc["phases"]:
        p["techniques"] = [technique(t) for t in p["attack_ids"]]
    inc["techniques"] = [technique(t) for t in inc["attack_ids"]]
    for b in breaches:
        b["techniques"] = [technique(t) for t in b["attack_ids"]]
    return {"incident": inc, "breaches": breaches, "devices": devices}


def export_incident(store: Store, incident_id: int, out: str | Path,
                    captures: Sequence[Path] = ()) -> BundleResult:
    """Write the bundle of `incident_id` into the folder `out` (created; files of the same names
    replaced). `captures`: folders to look for moved capture files in."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    data = incident_data(store, incident_id)
    inc = data["incident"]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"{out}: cannot create the folder ({e.strerror or e})") from None
    first, last = _ns(inc["first_seen"]), _ns(inc["last_seen"])
    start, end = chart_span(first, last)
    series = threat_series(store, inc["devices"], start, end)
    chart = threat_svg(series, start, end)
    try:
        ev = write_evidence(store, evidence_breaches(data["breaches"]), out / "evidence.pcapng", captures)
        evidence = {"file": "evidence.pcapng", "packets": ev.packets, "sessions": ev.sessions,
                    "captures": sorted(ev.captures)}
        data["evidence"] = evidence
        (out / "incident.json").write_text(_dump(data), encoding="utf-8")
        (out / "baselines.json").write_text(_dump(baseline_snapshot(store, inc["devices"])), encoding="utf-8")
        html = render("export_incident.html.j2", inc=inc, breaches=data["breaches"], devices=data["devices"],
                      chart=chart, evidence=evidence, series=series)
        (out / "report.html").write_text(html, encoding="utf-8")
        sums = "".join(f"{_sha256(out / name)}  {name}\n" for name in sorted(FILES))
        (out / "SHA256SUMS").write_text(sums, encoding="utf-8")
    except OSError as e:
        raise ExportError(f"{out}: cannot write the bundle ({e.strerror or e})") from None
    return BundleResult(out, (*FILES, "SHA256SUMS"), ev.packets, ev.sessions, len(data["breaches"]))


def _ns(iso: str | None) -> int:
    """A report time (ISO, microseconds, UTC) back to ns."""
    if not iso:
        return 0
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
