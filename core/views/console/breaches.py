"""The model breach log. Rows show the model's title; filters take ids or titles (or a part of
either), and the store holds ids (a store not migrated yet may still hold titles)."""

from __future__ import annotations

from dataclasses import dataclass

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.detection.models import model_id, title_of
from plantwatch.core.store.database import Store
from plantwatch.core.views.console.common import (
    _json_list,
    check_site,
    detection_ran,
    has_table,
    in_site,
)
from plantwatch.core.views.console.vocabulary import models_named


@dataclass(frozen=True, slots=True)
class BreachRow:
    breach_id: int
    model: str                            # the model's title (display)
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
    refs: tuple[PacketRef, ...]           # evidence packets
    incident_id: int | None
    model_id: str = ""                    # the model's stable id
    state: str = "new"                    # the analyst's state (core/detection/triage)
    triage: str = ""                      # accepted | suppressed | window, when triage covers it
    triage_by: str = ""                   # the acceptance's why, the rule's or the window's name
    site: str = ""


@dataclass(frozen=True, slots=True)
class Breaches:
    rows: tuple[BreachRow, ...]
    total: int
    detection: bool
    models: tuple[str, ...] = ()


_BREACH_COLS = ("breach_id, model, first_ts, last_ts, score, device, devices, explanation, phase,"
                " attack_ids, importance, sessions, refs, incident_id, site")
# the analyst's state and what triage did, in a store with triage (migration V6)
_STATE_SQL = ("(SELECT state FROM triage_states s WHERE s.kind = 'breach' AND s.target_id = breaches.breach_id"
              " AND s.site = breaches.site ORDER BY s.seq DESC LIMIT 1)")
_DISP_SQL = ("(SELECT disposition FROM breach_triage t WHERE t.breach_id = breaches.breach_id"
             " AND t.site = breaches.site)")
_TRIAGE_COLS = (f", COALESCE({_STATE_SQL}, 'new'), {_DISP_SQL},"
                " (SELECT label FROM breach_triage t WHERE t.breach_id = breaches.breach_id AND t.site = breaches.site)")
STATE_WORDS = {"new": "new", "ack": "acknowledged", "acknowledged": "acknowledged", "resolved": "resolved",
               "fp": "false positive", "false-positive": "false positive", "false positive": "false positive",
               "accepted": "accepted", "suppressed": "suppressed", "window": "window", "all": "all"}


def _cols(store: Store) -> str:
    return _BREACH_COLS + (_TRIAGE_COLS if has_table(store, "triage_states") else "")


def _breach_row(r: tuple) -> BreachRow:
    bid, model, first, last, score, dev, devs, expl, phase, attack, imp, sess, refs, inc, site = r[:15]
    state, disp, label = r[15:18] if len(r) > 15 else ("new", None, None)
    mid = model_id(model or "") or model or ""
    return BreachRow(
        breach_id=int(bid), model=title_of(mid), model_id=mid, first_ts=first, last_ts=last, score=float(score or 0),
        device=dev or "", devices=tuple(str(d) for d in _json_list(devs)), explanation=expl or "",
        phase=phase or "", attack_ids=tuple(str(x) for x in _json_list(attack)),
        importance=float(imp) if imp is not None else None,
        session_ids=tuple(int(x) for x in _json_list(sess) if isinstance(x, int)),
        refs=tuple(PacketRef.unpack(x) for x in _json_list(refs) if isinstance(x, int)),
        incident_id=inc, state=state or "new", triage=disp or "", triage_by=label or "", site=site)


def _state_clause(store: Store, state: str | None) -> tuple[str | None, list]:
    """SQL for a `state:` filter. Without one, the breaches in force: accepted and rule-suppressed
    ones are listed only when asked for (state:accepted, state:suppressed, state:all)."""
    if not has_table(store, "triage_states") or state == "all":
        return None, []
    if state is None:
        return f"({_DISP_SQL} IS NULL OR {_DISP_SQL} = 'window')", []
    if state in ("accepted", "suppressed", "window"):
        return f"{_DISP_SQL} = ?", [state]
    return f"COALESCE({_STATE_SQL}, 'new') = ? AND ({_DISP_SQL} IS NULL OR {_DISP_SQL} = 'window')", [state]


def model_clause(column: str, text: str) -> tuple[str, list[str]]:
    """SQL matching the stored models (ids, or titles in a store not migrated yet) of the models
    `text` names (vocabulary.models_named: id, title or a word of what they fire on)."""
    ids = models_named(text)
    values = ids + [title_of(i) for i in ids]
    if not values:
        return "0", []
    return f"{column} IN ({', '.join('?' * len(values))})", values


def breaches(store: Store, model: str | None = None, device: str | None = None,
             limit: int = 1000, text: tuple[str, ...] = (), state: str | None = None,
             site: str | None = None) -> Breaches:
    """The model breach log, newest first; `model` matches part of a model's id or title; `state`
    is one of STATE_WORDS' values (None: the breaches in force); `site` one site of the store's."""
    if not detection_ran(store):
        return Breaches((), 0, False)
    cond, scope = in_site(store)
    where: list[str] = [cond]
    params: list = list(scope)
    if site is not None:
        check_site(store, site)
        where.append("site = ?")
        params.append(site)
    sql, values = _state_clause(store, state)
    if sql:
        where.append(sql)
        params += values
    if model:
        sql, values = model_clause("model", model)
        where.append(sql)
        params += values
    if device:
        where.append("(device = ? OR devices LIKE ?)")
        params += [device, f'%"{device}"%']
    for w in text:
        sql, values = model_clause("model", w)
        where.append(f"({sql} OR LOWER(explanation) LIKE ? OR devices LIKE ?)")
        params += values + [f"%{w}%"] * 2
    sql_where = (" WHERE " + " AND ".join(where)) if where else ""
    total = store.execute(f"SELECT COUNT(*) FROM breaches{sql_where}", params).fetchone()[0]
    rows = store.execute(f"SELECT {_cols(store)} FROM breaches{sql_where}"
                         " ORDER BY first_ts DESC, breach_id, site LIMIT ?", (*params, limit)).fetchall()
    models = tuple(sorted({title_of(model_id(r[0]) or r[0])
                           for r in store.execute(f"SELECT DISTINCT model FROM breaches WHERE {cond}", scope)}))
    return Breaches(tuple(_breach_row(r) for r in rows), int(total), True, models)


def breach(store: Store, breach_id: int) -> BreachRow | None:
    if not has_table(store, "breaches"):
        return None
    r = store.execute(f"SELECT {_cols(store)} FROM breaches WHERE breach_id = ? AND site = ?",
                      (breach_id, store.site)).fetchone()
    return _breach_row(r) if r else None
