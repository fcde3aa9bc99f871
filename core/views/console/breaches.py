"""The model breach log. Rows show the model's title; filters take ids or titles (or a part of
either), and the store holds ids (a store not migrated yet may still hold titles)."""

from __future__ import annotations

from dataclasses import dataclass

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.detection.models import model_id, title_of
from plantwatch.core.store.database import Store
from plantwatch.core.views.console.common import _json_list, detection_ran, has_table
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
    mid = model_id(model or "") or model or ""
    return BreachRow(
        breach_id=int(bid), model=title_of(mid), model_id=mid, first_ts=first, last_ts=last, score=float(score or 0),
        device=dev or "", devices=tuple(str(d) for d in _json_list(devs)), explanation=expl or "",
        phase=phase or "", attack_ids=tuple(str(x) for x in _json_list(attack)),
        importance=float(imp) if imp is not None else None,
        session_ids=tuple(int(x) for x in _json_list(sess) if isinstance(x, int)),
        refs=tuple(PacketRef.unpack(x) for x in _json_list(refs) if isinstance(x, int)),
        incident_id=inc)


def model_clause(column: str, text: str) -> tuple[str, list[str]]:
    """SQL matching the stored models (ids, or titles in a store not migrated yet) of the models
    `text` names (vocabulary.models_named: id, title or a word of what they fire on)."""
    ids = models_named(text)
    values = ids + [title_of(i) for i in ids]
    if not values:
        return "0", []
    return f"{column} IN ({', '.join('?' * len(values))})", values


def breaches(store: Store, model: str | None = None, device: str | None = None,
             limit: int = 1000, text: tuple[str, ...] = ()) -> Breaches:
    """The model breach log, newest first; `model` matches part of a model's id or title."""
    if not detection_ran(store):
        return Breaches((), 0, False)
    where: list[str] = []
    params: list = []
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
    rows = store.execute(f"SELECT {_BREACH_COLS} FROM breaches{sql_where}"
                         " ORDER BY first_ts DESC, breach_id LIMIT ?", (*params, limit)).fetchall()
    models = tuple(sorted({title_of(model_id(r[0]) or r[0])
                           for r in store.execute("SELECT DISTINCT model FROM breaches")}))
    return Breaches(tuple(_breach_row(r) for r in rows), int(total), True, models)


def breach(store: Store, breach_id: int) -> BreachRow | None:
    if not has_table(store, "breaches"):
        return None
    r = store.execute(f"SELECT {_BREACH_COLS} FROM breaches WHERE breach_id = ?", (breach_id,)).fetchone()
    return _breach_row(r) if r else None
