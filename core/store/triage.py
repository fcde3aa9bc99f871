"""The analyst's decisions in the store: breach and incident states, acceptances, rules files and
maintenance windows (tables from migration V6). Every change is one short `BEGIN IMMEDIATE`
transaction that also re-applies triage (plantwatch.core.store.triage_apply), so a console and a
sensor can write the same store: SQLite's busy timeout makes one wait for the other. The sensor
holds no copy of the triage: its store sink re-reads these small tables and re-applies them inside
each of its detection transactions, so a change counts from its next batch. Times of these
actions are wall-clock.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import time
from dataclasses import dataclass

from plantwatch.core.detection.triage.facts import breach_keys
from plantwatch.core.detection.triage.records import STATES, Acceptance, Rule, TriageInputs, Window
from plantwatch.core.detection.triage.rules import parse_rules
from plantwatch.core.store.database import Store, StoreError
from plantwatch.core.store.triage_apply import ApplyReport, apply_triage, load_breach, load_inputs

CLASSES = ("READ", "DISCOVER", "ACTION", "REPROGRAM")


class TriageError(StoreError):
    """A triage request that cannot be done (unknown id, bad state); str() is one line."""


def local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _now() -> int:
    return time.time_ns()


@dataclass(frozen=True, slots=True)
class StateChange:
    seq: int
    kind: str
    target_id: int
    state: str
    note: str
    user: str
    at: int


def _exists(store: Store, kind: str, target_id: int) -> bool:
    """A stored breach; an incident as shown or as detected (one triage dissolved keeps its state)."""
    sql = ("SELECT 1 FROM breaches WHERE breach_id = ?1 AND site = ?2" if kind == "breach" else
           "SELECT 1 FROM incidents WHERE incident_id = ?1 AND site = ?2 UNION ALL"
           " SELECT 1 FROM incidents_detected WHERE incident_id = ?1 AND site = ?2")
    return store.execute(sql, (target_id, store.site)).fetchone() is not None


def set_state(store: Store, kind: str, target_id: int, state: str, note: str = "",
              user: str | None = None) -> StateChange:
    """Record a state change of a breach or an incident. A false positive needs a note."""
    if kind not in ("breach", "incident"):
        raise TriageError(f"{store.path}: kind must be breach or incident, not {kind!r}")
    if state not in STATES:
        raise TriageError(f"{store.path}: unknown state {state!r} (one of: {', '.join(STATES)})")
    if state == "false positive" and not note.strip():
        raise TriageError(f"{store.path}: a false positive needs a note saying why")
    user = user or local_user()
    with store.transaction():
        if not _exists(store, kind, target_id):
            raise TriageError(f"{store.path}: no {kind} {target_id}")
        at = _now()
        cur = store.execute("INSERT INTO triage_states (kind, target_id, state, note, user, at, site, sensor)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (kind, target_id, state, note, user, at, store.site, store.sensor))
    return StateChange(int(cur.lastrowid), kind, target_id, state, note, user, at)


def undo_state(store: Store, kind: str, target_id: int, user: str | None = None) -> StateChange:
    """Undo the last state change: a new change back to the state before it (history is kept)."""
    stack = _effective(history(store, kind, target_id))
    if not stack:
        raise TriageError(f"{store.path}: {kind} {target_id} has no state change to undo")
    before = stack[-2] if len(stack) >= 2 else "new"
    return set_state(store, kind, target_id, before, f"{UNDO}{stack[-1]}", user)


UNDO = "undo of "


def _effective(hist: list[StateChange]) -> list[str]:
    """The states changes left in force, replaying each undo as taking back the one before it."""
    stack: list[str] = []
    for h in hist:
        if h.note.startswith(UNDO) and stack:
            stack.pop()
        else:
            stack.append(h.state)
    return stack


def history(store: Store, kind: str, target_id: int) -> list[StateChange]:
    rows = store.execute("SELECT seq, kind, target_id, state, note, user, at FROM triage_states"
                         " WHERE kind = ? AND target_id = ? AND site = ? ORDER BY seq",
                         (kind, target_id, store.site)).fetchall()
    return [StateChange(*r) for r in rows]


def state_of(store: Store, kind: str, target_id: int) -> str:
    r = store.execute("SELECT state FROM triage_states WHERE kind = ? AND target_id = ? AND site = ?"
                      " ORDER BY seq DESC LIMIT 1", (kind, target_id, store.site)).fetchone()
    return r[0] if r else "new"


def states(store: Store, kind: str) -> dict[int, StateChange]:
    """The current state change of every breach (or incident) of the store's site that has one."""
    rows = store.execute(
        "SELECT seq, kind, target_id, state, note, user, at FROM triage_states t WHERE kind = ? AND site = ?"
        " AND seq = (SELECT MAX(seq) FROM triage_states u WHERE u.kind = t.kind AND u.target_id = t.target_id"
        " AND u.site = t.site)", (kind, store.site)).fetchall()
    return {int(r[2]): StateChange(*r) for r in rows}


# --- acceptances ---------------------------------------------------------------------------------

def accept(store: Store, breach_id: int, why: str, user: str | None = None) -> tuple[Acceptance, ApplyReport]:
    """Take the keys that made a breach (model, device, targets, user, protocol, operations,
    ports, endpoints...) as normal, and re-score at once."""
    if not why.strip():
        raise TriageError(f"{store.path}: accepting as normal needs a reason (--why)")
    user = user or local_user()
    with store.transaction():
        b = load_breach(store, breach_id)
        if b is None:
            raise TriageError(f"{store.path}: no breach {breach_id}")
        keys = breach_keys(b)
        at = _now()
        cur = store.execute(
            "INSERT INTO acceptances (breach_id, model, actor, targets, keys, why, user, at, site, sensor)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (breach_id, b.model, b.device, json.dumps(b.devices[1:]), json.dumps(keys), why, user, at,
             store.site, store.sensor))
        report = apply_triage(store)
    a = Acceptance(int(cur.lastrowid), breach_id, b.model, b.device, tuple(b.devices[1:]),
                   tuple((k, tuple(v)) for k, v in keys), why, user, at)
    return a, report


def _withdraw(store: Store, table: str, col: str, ident: int, user: str | None, what: str) -> ApplyReport:
    with store.transaction():
        cur = store.execute(f"UPDATE {table} SET withdrawn_at = ?, withdrawn_by = ? WHERE {col} = ?"
                            " AND withdrawn_at IS NULL AND site = ?", (_now(), user or local_user(), ident, store.site))
        if cur.rowcount == 0:
            raise TriageError(f"{store.path}: no {what} {ident} in force")
        return apply_triage(store)


def withdraw_acceptance(store: Store, accept_id: int, user: str | None = None) -> ApplyReport:
    return _withdraw(store, "acceptances", "accept_id", accept_id, user, "acceptance")


def acceptances(store: Store, include_withdrawn: bool = False) -> list[dict]:
    return _records(store, "acceptances", "accept_id", ("breach_id", "model", "actor", "targets",
                    "keys", "why", "user", "at"), ("targets", "keys"), include_withdrawn)


def _records(store: Store, table: str, key: str, columns: tuple[str, ...], json_columns: tuple[str, ...],
             include_withdrawn: bool) -> list[dict]:
    """Rows of a triage table of the store's site as dicts (JSON columns decoded), oldest first;
    withdrawn ones only when asked."""
    where = " WHERE site = ?" + ("" if include_withdrawn else " AND withdrawn_at IS NULL")
    cur = store.execute(f"SELECT {key}, {', '.join(columns)}, withdrawn_at, withdrawn_by "
                        f"FROM {table}{where} ORDER BY {key}", (store.site,))
    names = [d[0] for d in cur.description]
    out = []
    for r in cur.fetchall():
        d = dict(zip(names, r, strict=True))
        for k in json_columns:
            d[k] = json.loads(d[k])
        out.append(d)
    return out


# --- rules ---------------------------------------------------------------------------------------

def load_rules(store: Store, path: str, text: str, user: str | None = None) -> tuple[int, list[Rule], ApplyReport]:
    """Keep a rules file in the store (it replaces the one in force) and apply it to every breach
    already stored. A file with mistakes raises RulesError and changes nothing."""
    rules = parse_rules(text)
    user = user or local_user()
    with store.transaction():
        now = _now()
        store.execute("UPDATE rulesets SET withdrawn_at = ?, withdrawn_by = ? WHERE withdrawn_at IS NULL"
                      " AND site = ?", (now, user, store.site))
        cur = store.execute("INSERT INTO rulesets (path, body, sha256, user, at, site, sensor)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (path, text, hashlib.sha256(text.encode()).hexdigest(), user, now,
                             store.site, store.sensor))
        report = apply_triage(store)
    return int(cur.lastrowid), rules, report


def withdraw_rules(store: Store, user: str | None = None) -> ApplyReport:
    r = store.execute("SELECT ruleset_id FROM rulesets WHERE withdrawn_at IS NULL AND site = ?",
                      (store.site,)).fetchone()
    if r is None:
        raise TriageError(f"{store.path}: no rules file in force")
    return _withdraw(store, "rulesets", "ruleset_id", int(r[0]), user, "rules file")


def rulesets(store: Store) -> list[dict]:
    cur = store.execute("SELECT ruleset_id, path, sha256, user, at, withdrawn_at, withdrawn_by FROM rulesets"
                        " WHERE site = ? ORDER BY ruleset_id", (store.site,))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# --- maintenance windows -------------------------------------------------------------------------

def add_window(store: Store, name: str, start_ts: int, end_ts: int, devices: list[str],
               targets: list[str], classes: list[str], note: str = "",
               user: str | None = None) -> tuple[Window, ApplyReport]:
    """Declare a maintenance window (ahead of time or after the fact) and re-score at once."""
    if end_ts <= start_ts:
        raise TriageError(f"{store.path}: the window ends before it starts")
    if not devices:
        raise TriageError(f"{store.path}: a window needs the devices doing the work")
    bad = [c for c in classes if c.upper() not in CLASSES]
    if bad:
        raise TriageError(f"{store.path}: unknown operation class {bad[0]!r} ({', '.join(CLASSES)})")
    user = user or local_user()
    with store.transaction():
        at = _now()
        cur = store.execute(
            "INSERT INTO windows (name, start_ts, end_ts, devices, targets, classes, note, user, at, site, sensor)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, start_ts, end_ts, json.dumps(devices), json.dumps(targets),
             json.dumps([c.upper() for c in classes]), note, user, at, store.site, store.sensor))
        report = apply_triage(store)
    w = Window(int(cur.lastrowid), name, start_ts, end_ts, tuple(devices), tuple(targets),
               tuple(c.upper() for c in classes), note, user, at)
    return w, report


def withdraw_window(store: Store, window_id: int, user: str | None = None) -> ApplyReport:
    return _withdraw(store, "windows", "window_id", window_id, user, "window")


def windows(store: Store, include_withdrawn: bool = False) -> list[dict]:
    return _records(store, "windows", "window_id", ("name", "start_ts", "end_ts", "devices", "targets",
                    "classes", "note", "user", "at"), ("devices", "targets", "classes"), include_withdrawn)


def suppressed(store: Store, kind: str | None = None) -> list[dict]:
    """Breaches triage covered (accepted, suppressed by a rule, inside a window), with what did."""
    where, params = ("", ()) if kind is None else (" AND t.disposition = ?", (kind,))
    cur = store.execute(
        "SELECT t.breach_id, t.disposition, t.ref, t.label, b.model, b.device, b.first_ts, d.score"
        " FROM breach_triage t JOIN breaches b USING (breach_id, site) LEFT JOIN breach_detected d"
        f" USING (breach_id, site) WHERE t.site = ?{where} ORDER BY b.first_ts, t.breach_id", (store.site, *params))
    names = ["breach_id", "disposition", "ref", "label", "model", "device", "first_ts", "detected_score"]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def inputs(store: Store) -> TriageInputs:
    """The acceptances, rules and windows in force."""
    return load_inputs(store)


__all__ = ["TriageError", "StateChange", "local_user", "set_state", "undo_state",
           "history", "state_of", "states", "accept", "withdraw_acceptance", "acceptances", "load_rules",
           "withdraw_rules", "rulesets", "add_window", "withdraw_window", "windows", "suppressed", "inputs"]
