"""Applying triage to the store: read the detected breaches and incidents (breach_detected,
incidents_detected) and the triage in force, re-score them (plantwatch.core.detection.triage.rescore,
a pure function) and write the effective values into `breaches`, `incidents`, `breach_triage` and
`incident_triage`. Runs inside the caller's transaction: after every triage change, and after
every detection the store sink writes (so a sensor applies the console's triage from its next
batch). With nothing in force it restores exactly what detection wrote.
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from plantwatch.core.decode.schema import APP_NAMES, CLASS_NAMES
from plantwatch.core.detection.models import load_config, title_of
from plantwatch.core.detection.records import Breach, Incident, IncidentPhase, TimelineEntry
from plantwatch.core.detection.triage.facts import facts_of
from plantwatch.core.detection.triage.records import (
    Acceptance,
    BreachFacts,
    TriageInputs,
    Window,
)
from plantwatch.core.detection.triage.rescore import device_threat, rescore
from plantwatch.core.detection.triage.rules import RulesError, parse_rules
from plantwatch.core.store.database import Store
from plantwatch.core.store.rows import incident_row

_B_COLS = ("b.breach_id, b.model, b.category, b.severity, b.phase, b.attack_ids, b.device, b.devices,"
           " b.first_ts, b.last_ts, COALESCE(d.score, b.score), b.importance, b.explanation, b.sessions,"
           " b.refs, b.details, CASE WHEN d.breach_id IS NULL THEN b.incident_id ELSE d.incident_id END")
_I_COLS = ("incident_id, title, device, devices, first_ts, last_ts, score, phases, attack_ids, narrative,"
           " timeline, breaches")


@dataclass(slots=True)
class ApplyReport:
    """What the triage in force does to the store's breaches."""
    accepted: int = 0
    suppressed: int = 0
    window: int = 0
    dissolved: list[int] = field(default_factory=list)     # detected incident ids
    rescored: list[int] = field(default_factory=list)      # incident ids rebuilt
    by_rule: dict[str, int] = field(default_factory=dict)  # rule name -> breaches suppressed

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "suppressed": self.suppressed, "in_window": self.window,
                "incidents_dissolved": len(self.dissolved), "incidents_rescored": len(self.rescored),
                "by_rule": dict(sorted(self.by_rule.items()))}


def _breach(r: tuple) -> Breach:
    (bid, model, cat, sev, phase, attack, dev, devs, first, last, score, imp, expl, sess, refs,
     details, iid) = r
    return Breach(breach_id=int(bid), model=model, category=cat or "", severity=sev or "", phase=phase or "",
                  attack_ids=json.loads(attack or "[]"), device=dev or "", devices=json.loads(devs or "[]"),
                  first_ts=int(first or 0), last_ts=int(last or 0), score=float(score or 0),
                  importance=float(imp or 0), explanation=expl or "", sessions=json.loads(sess or "[]"),
                  refs=json.loads(refs or "[]"), details=json.loads(details or "{}"),
                  incident_id=None if iid is None else int(iid))


def load_breach(store: Store, breach_id: int) -> Breach | None:
    """One breach as detection wrote it."""
    r = store.execute(f"SELECT {_B_COLS} FROM breaches b LEFT JOIN breach_detected d USING (breach_id, site)"
                      " WHERE b.breach_id = ? AND b.site = ?", (breach_id, store.site)).fetchone()
    return _breach(r) if r else None


def load_breaches(store: Store) -> list[Breach]:
    """Every breach of the store's site as detection wrote it, in the log's order (time, model title, id)."""
    rows = store.execute(f"SELECT {_B_COLS} FROM breaches b LEFT JOIN breach_detected d USING (breach_id, site)"
                         " WHERE b.site = ?", (store.site,)).fetchall()
    out = [_breach(r) for r in rows]
    out.sort(key=lambda b: (b.first_ts, title_of(b.model), b.breach_id))
    return out


def incident_from_row(r: tuple) -> Incident:
    iid, title, dev, devs, first, last, score, phases, attack, narrative, timeline, n = r
    return Incident(
        incident_id=int(iid), title=title or "", device=dev or "", devices=json.loads(devs or "[]"),
        first_ts=int(first or 0), last_ts=int(last or 0), score=float(score or 0),
        phases=[IncidentPhase(**p) for p in json.loads(phases or "[]")],
        attack_ids=json.loads(attack or "[]"), narrative=narrative or "",
        timeline=[TimelineEntry(**t) for t in json.loads(timeline or "[]")], breaches=int(n or 0))


def load_detected_incidents(store: Store, breaches: list[Breach]) -> list[Incident]:
    held = {b.incident_id for b in breaches if b.incident_id is not None}
    rows = store.execute(f"SELECT {_I_COLS} FROM incidents_detected WHERE site = ?"
                         " ORDER BY score DESC, first_ts, incident_id", (store.site,)).fetchall()
    return [incident_from_row(r) for r in rows if int(r[0]) in held]


def load_inputs(store: Store) -> TriageInputs:
    """The acceptances, the rules file and the maintenance windows in force at the store's site."""
    inp = TriageInputs()
    for aid, bid, model, actor, targets, keys, why, user, at in store.execute(
            "SELECT accept_id, breach_id, model, actor, targets, keys, why, user, at FROM acceptances"
            " WHERE withdrawn_at IS NULL AND site = ? ORDER BY accept_id", (store.site,)):
        inp.acceptances.append(Acceptance(
            int(aid), int(bid), model, actor, tuple(json.loads(targets)),
            tuple((k, tuple(v)) for k, v in json.loads(keys)), why, user, int(at)))
    r = store.execute("SELECT ruleset_id, body FROM rulesets WHERE withdrawn_at IS NULL AND site = ?"
                      " ORDER BY ruleset_id DESC LIMIT 1", (store.site,)).fetchone()
    if r is not None:
        try:
            inp.rules = parse_rules(r[1], int(r[0]))
        except RulesError:   # checked when loaded; a later plantwatch that reads it differently allows nothing
            inp.rules = []
    for wid, name, a, b, devs, tgts, cls, note, user, at in store.execute(
            "SELECT window_id, name, start_ts, end_ts, devices, targets, classes, note, user, at FROM windows"
            " WHERE withdrawn_at IS NULL AND site = ? ORDER BY window_id", (store.site,)):
        inp.windows.append(Window(int(wid), name, int(a), int(b), tuple(json.loads(devs)),
                                  tuple(json.loads(tgts)), tuple(json.loads(cls)), note, user, int(at)))
    return inp


def _chunks(ids: list, n: int = 500) -> list[list]:
    return [ids[i:i + n] for i in range(0, len(ids), n)]


def breach_facts(store: Store, breaches: list[Breach], with_sessions: bool) -> dict[int, BreachFacts]:
    """Facts of every breach; the evidence sessions' ports, protocols and operations only when a
    rule or a window needs them."""
    names = {d: n for d, n in store.execute("SELECT device, name FROM devices WHERE name IS NOT NULL AND site = ?",
                                            (store.site,))}
    sess: dict[int, tuple[int | None, str]] = {}
    ops: dict[int, list[tuple[str, str]]] = {}
    if with_sessions:
        ids = sorted({int(s) for b in breaches for s in b.sessions})
        for chunk in _chunks(ids):
            q = ", ".join("?" * len(chunk))
            for sid, port, app in store.execute(
                    f"SELECT session_id, server_port, app FROM sessions WHERE site = ? AND session_id IN ({q})",
                    (store.site, *chunk)):
                sess[int(sid)] = (port, APP_NAMES.get(int(app or 0), ""))
            for sid, name, cls in store.execute(
                    f"SELECT session_id, name, cls FROM session_ops WHERE from_client = 1 AND site = ?"
                    f" AND session_id IN ({q})", (store.site, *chunk)):
                ops.setdefault(int(sid), []).append((name or "", CLASS_NAMES.get(int(cls or 0), "")))
    return {b.breach_id: facts_of(b, [sess[s] for s in b.sessions if s in sess],
                                  [o for s in b.sessions for o in ops.get(s, ())], names)
            for b in breaches}


def _context(store: Store) -> tuple[set[str], dict[str, str]]:
    """New devices (not in the baseline, not external) and device names, as incidents name them."""
    site = (store.site,)
    names = {d: n for d, n in store.execute(
        "SELECT device, name FROM devices WHERE name IS NOT NULL AND name != '' AND site = ?", site)}
    r = store.execute("SELECT value FROM baseline_meta WHERE name = 'maturity' AND site = ?", site).fetchone()
    if not r or r[0] != "mature":
        return set(), names
    new = {d for (d,) in store.execute(
        "SELECT device FROM devices WHERE COALESCE(zone_kind, '') != 'external' AND site = ?1"
        " AND device NOT IN (SELECT device FROM baseline_devices WHERE site = ?1)", site)}
    return new, names


def _device_scores(store: Store, breaches: list[Breach], covered: set[int], cfg: dict[str, Any]) -> None:
    """Threat scores as detected, except for the devices a covered breach involved: those are
    recomputed from the re-scored breaches."""
    site = (store.site,)
    store.execute("DELETE FROM device_scores WHERE site = ?", site)
    store.execute("INSERT INTO device_scores (device, ts, score, breaches, site)"
                  " SELECT device, ts, score, breaches, site FROM device_scores_detected WHERE site = ?", site)
    affected = {d for b in breaches if b.breach_id in covered for d in b.devices}
    if not affected:
        return
    for chunk in _chunks(sorted(affected)):
        store.execute(f"DELETE FROM device_scores WHERE site = ? AND device IN ({', '.join('?' * len(chunk))})",
                      (store.site, *chunk))
    store.db.executemany("INSERT INTO device_scores (device, ts, score, breaches, site) VALUES (?, ?, ?, ?, ?)",
                         [(*row, store.site) for row in device_threat(breaches, affected, cfg)])


def _keep_origin(store: Store) -> None:
    """Rows re-written from what detection wrote keep its sensor (migration V8; the site is the store's)."""
    store.execute("UPDATE incidents SET sensor = d.sensor FROM incidents_detected d"
                  " WHERE d.incident_id = incidents.incident_id AND d.site = incidents.site AND d.site = ?",
                  (store.site,))
    store.execute("UPDATE device_scores SET sensor = d.sensor FROM device_scores_detected d"
                  " WHERE d.device = device_scores.device AND d.ts = device_scores.ts AND d.site = device_scores.site"
                  " AND d.site = ?", (store.site,))


REGROUP_STATE = "triage.regroup"   # state row: the [incidents] and [scoring] tables detection last used


def save_regroup_config(store: Store, config: dict[str, Any]) -> None:
    """Keep the thresholds detection grouped and scored with (an `analyze --models` file's)."""
    value = json.dumps({k: config[k] for k in ("incidents", "scoring") if k in config}, sort_keys=True)
    store.execute("INSERT INTO state (site, name, value) VALUES (?, ?, ?)"
                  " ON CONFLICT (site, sensor, name) DO UPDATE SET value = excluded.value",
                  (store.site, REGROUP_STATE, value))


def regroup_config(store: Store) -> dict[str, Any]:
    """The detection config re-scoring uses: the defaults, with the thresholds detection used."""
    cfg = load_config()
    r = store.execute("SELECT value FROM state WHERE site = ? AND sensor = '' AND name = ?",
                      (store.site, REGROUP_STATE)).fetchone()
    if r is not None:
        with suppress(TypeError, ValueError):   # unreadable: the defaults
            cfg.update(json.loads(r[0]))
    return cfg


def apply_triage(store: Store, config: dict[str, Any] | None = None) -> ApplyReport:
    """Re-score the store's breaches and incidents with the triage in force (inside the caller's
    transaction)."""
    inp = load_inputs(store)
    site = (store.site,)
    had = store.execute("SELECT (SELECT COUNT(*) FROM breach_triage WHERE site = ?1)"
                        " + (SELECT COUNT(*) FROM incident_triage WHERE site = ?1)", site).fetchone()[0]
    if inp.empty and not had:
        return ApplyReport()   # the store already holds what detection wrote
    breaches = load_breaches(store)
    detected = load_detected_incidents(store, breaches)
    facts = breach_facts(store, breaches, with_sessions=bool(inp.rules or inp.windows))
    new_devices, names = _context(store)
    cfg = config or regroup_config(store)
    res = rescore(breaches, detected, facts, inp, cfg, new_devices, names)
    current = {int(b): (s, i) for b, s, i in store.execute(
        "SELECT breach_id, score, incident_id FROM breaches WHERE site = ?", site)}
    for b in res.breaches:
        if current.get(b.breach_id) != (b.score, b.incident_id):
            store.execute("UPDATE breaches SET score = ?, incident_id = ? WHERE breach_id = ? AND site = ?",
                          (b.score, b.incident_id, b.breach_id, store.site))
    store.execute("DELETE FROM breach_triage WHERE site = ?", site)
    store.db.executemany("INSERT INTO breach_triage (breach_id, disposition, ref, label, site) VALUES (?, ?, ?, ?, ?)",
                         [(d.breach_id, d.kind, d.ref, d.label, store.site) for d in res.dispositions.values()])
    store.execute("DELETE FROM incidents WHERE site = ?", site)
    if res.incidents:
        rows = [{**incident_row(i), "site": store.site} for i in res.incidents]
        cols = list(rows[0])
        store.db.executemany(f"INSERT INTO incidents ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                             [tuple(r[c] for c in cols) for r in rows])
    _device_scores(store, res.breaches, {b.breach_id for b in breaches if b.breach_id in res.dispositions}, cfg)
    _keep_origin(store)
    store.execute("DELETE FROM incident_triage WHERE site = ?", site)
    notes = [(iid, "dissolved", note, store.site) for iid, note in res.dissolved.items()]
    notes += [(src, "rescored", "re-scored without its accepted, suppressed or windowed breaches", store.site)
              for src in sorted(set(res.rescored.values()))]
    store.db.executemany("INSERT OR REPLACE INTO incident_triage (incident_id, fate, note, site) VALUES (?, ?, ?, ?)",
                         notes)
    rep = ApplyReport(dissolved=sorted(res.dissolved), rescored=sorted(res.rescored))
    for d in res.dispositions.values():
        setattr(rep, d.kind, getattr(rep, d.kind) + 1)
        if d.kind == "suppressed":
            rep.by_rule[d.label] = rep.by_rule.get(d.label, 0) + 1
    return rep


__all__ = ["ApplyReport", "apply_triage", "save_regroup_config", "regroup_config", "REGROUP_STATE", "load_breach",
           "load_breaches", "load_detected_incidents", "load_inputs", "breach_facts", "incident_from_row"]
