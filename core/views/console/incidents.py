"""The analyst's incidents and their figures."""

from __future__ import annotations

from dataclasses import dataclass

from plantwatch.core.decode.schema import APP_NAMES
from plantwatch.core.detection.models import model_id, title_of
from plantwatch.core.store.database import Store
from plantwatch.core.views.console.breaches import _BREACH_COLS, BreachRow, _breach_row
from plantwatch.core.views.console.common import (
    _FAILED_SQL,
    FilterError,
    _addr_params,
    _json_list,
    check_site,
    detection_ran,
    fmt_ts,
    has_table,
    in_site,
    ip_of,
)


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
    state: str = "new"                     # the analyst's state (core/detection/triage)
    triage_note: str = ""                  # set when triage re-scored it
    site: str = ""


@dataclass(frozen=True, slots=True)
class Incidents:
    rows: tuple[IncidentRow, ...]
    detection: bool
    dissolved: int = 0                     # detected incidents that triage dissolved


_INCIDENT_COLS = ("incident_id, title, score, device, first_ts, last_ts, devices, attack_ids, phases,"
                  " narrative, timeline, breaches, site")
_TRIAGE_COLS = (", COALESCE((SELECT state FROM triage_states s WHERE s.kind = 'incident'"
                " AND s.target_id = incidents.incident_id AND s.site = incidents.site ORDER BY s.seq DESC LIMIT 1),"
                " 'new'), (SELECT note FROM incident_triage t WHERE t.incident_id = incidents.incident_id"
                " AND t.site = incidents.site)")


def _cols(store: Store) -> str:
    return _INCIDENT_COLS + (_TRIAGE_COLS if has_table(store, "triage_states") else "")


def _title(stored: object) -> str:
    """A stored model (an id, or a title before V4) as its display title."""
    s = str(stored or "")
    return title_of(model_id(s) or s)


def _incident_row(r: tuple) -> IncidentRow:
    iid, title, score, dev, first, last, devs, attack, phases, narrative, timeline, n, site = r[:13]
    state, note = r[13:15] if len(r) > 13 else ("new", None)
    ph = tuple(Phase(name=str(p.get("phase") or p.get("name") or ""),
                     attack_ids=tuple(str(x) for x in p.get("attack_ids") or ()),
                     first_ts=p.get("first_ts"), last_ts=p.get("last_ts"),
                     models=tuple(_title(x) for x in p.get("models") or ()))
               for p in _json_list(phases) if isinstance(p, dict))
    tl = tuple(TimelineEntry(ts=e.get("ts"), phase=str(e.get("phase") or ""), model=_title(e.get("model")),
                             device=str(e.get("device") or ""), explanation=str(e.get("explanation") or ""),
                             breach_id=e.get("breach_id"))
               for e in _json_list(timeline) if isinstance(e, dict))
    return IncidentRow(incident_id=int(iid), title=title or "", score=float(score or 0), device=dev or "",
                       first_ts=first, last_ts=last, devices=tuple(str(d) for d in _json_list(devs)),
                       attack_ids=tuple(str(x) for x in _json_list(attack)), phases=ph,
                       narrative=narrative or "", timeline=tl, breaches=int(n or 0), state=state or "new",
                       triage_note=note or "", site=site)


def incidents(store: Store, site: str | None = None) -> Incidents:
    """The analyst's incidents, highest score first (`site`: one site of the store's)."""
    if not has_table(store, "incidents") or not detection_ran(store):
        return Incidents((), False)
    cond, scope = in_site(store)
    if site is not None:
        check_site(store, site)
        cond, scope = f"{cond} AND site = ?", (*scope, site)
    rows = store.execute(f"SELECT {_cols(store)} FROM incidents WHERE {cond} ORDER BY score DESC, first_ts DESC,"
                         " site", scope).fetchall()
    dissolved = store.execute(f"SELECT COUNT(*) FROM incident_triage WHERE fate = 'dissolved' AND {cond}",
                              scope).fetchone()[0] if has_table(store, "incident_triage") else 0
    return Incidents(tuple(_incident_row(r) for r in rows), True, int(dissolved))


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    incident: IncidentRow
    breaches: tuple[BreachRow, ...]
    summaries: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # title, (label, value) rows


def incident_detail(store: Store, incident_id: int) -> IncidentDetail | None:
    if not has_table(store, "incidents"):
        return None
    r = store.execute(f"SELECT {_cols(store)} FROM incidents WHERE incident_id = ? AND site = ?",
                      (incident_id, store.site)).fetchone()
    if r is None:
        return None
    inc = _incident_row(r)
    rows = store.execute(f"SELECT {_BREACH_COLS} FROM breaches WHERE incident_id = ? AND site = ?"
                         " ORDER BY first_ts, breach_id", (incident_id, store.site)).fetchall()
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
            "SELECT server_hi, server_lo, server_port, MAX(app), SUM(bytes_c2s), COUNT(*) FROM sessions"
            " WHERE client_hi = ? AND client_lo = ? AND first_ts BETWEEN ? AND ? AND site = ?"
            " GROUP BY server_hi, server_lo, server_port ORDER BY SUM(bytes_c2s) DESC LIMIT 1",
            (hi, lo, *span, store.site)).fetchone()
        if up and up[4]:
            out.append((f"Largest upload from {dev}", (
                ("to", f"{ip_of(up[0], up[1])} port {up[2]} ({APP_NAMES.get(up[3] or 0, '') or 'tcp'})"),
                ("bytes sent", f"{int(up[4]):,} in {up[5]} connections"))))
        scan = store.execute(
            "SELECT COUNT(*), COUNT(DISTINCT server_hi || ':' || server_lo), GROUP_CONCAT(DISTINCT server_port),"
            f" SUM(state IN {_FAILED_SQL}), MIN(first_ts), MAX(last_ts) FROM sessions"
            " WHERE client_hi = ? AND client_lo = ? AND first_ts BETWEEN ? AND ? AND site = ?",
            (hi, lo, *span, store.site)).fetchone()
        if scan and scan[3]:
            ports = sorted({int(p) for p in (scan[2] or "").split(",") if p.lstrip("-").isdigit() and int(p) >= 0})
            out.append((f"Scanning by {dev}", (
                ("connections", f"{scan[0]:,} to {scan[1]} hosts, {scan[3]:,} failed"),
                ("ports", ", ".join(map(str, ports[:20])) + (" ..." if len(ports) > 20 else "")),
                ("from", f"{fmt_ts(scan[4])} to {fmt_ts(scan[5])}"))))
    return tuple(out)
