"""The analyst's triage in the report (`analyze --json/--jsonl`): each breach and incident's
state, what covered a breach (an acceptance, a rule, a maintenance window), and a `triage`
section. Keys appear only in a store that has triage, so a report without triage stays as it was.
Accepted and rule-suppressed breaches leave `breaches` for `triage.suppressed` (kept, counted,
listable); breaches inside a window stay in `breaches`, labelled.
"""

from __future__ import annotations

from typing import Any

from plantwatch.core.store import triage as store_triage
from plantwatch.core.store.database import Store
from plantwatch.core.views.console.common import has_table
from plantwatch.core.views.report import iso as _iso


def _change(ch: store_triage.StateChange) -> dict[str, Any]:
    return {"state": ch.state, "note": ch.note, "user": ch.user, "at": _iso(ch.at)}


def has_triage(store: Store) -> bool:
    if not has_table(store, "triage_states"):
        return False
    return bool(store.execute(
        "SELECT (SELECT COUNT(*) FROM triage_states WHERE site = ?1)"
        " + (SELECT COUNT(*) FROM acceptances WHERE site = ?1)"
        " + (SELECT COUNT(*) FROM rulesets WHERE site = ?1) + (SELECT COUNT(*) FROM windows WHERE site = ?1)",
        (store.site,)).fetchone()[0])


def apply(store: Store, breaches: list[dict[str, Any]], incidents: list[dict[str, Any]]
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]:
    """(breaches in force, incidents, the triage section), annotated; unchanged without triage."""
    if not has_triage(store):
        return breaches, incidents, None
    b_states, i_states = store_triage.states(store, "breach"), store_triage.states(store, "incident")
    disp = {int(r[0]): r for r in store.execute(
        "SELECT t.breach_id, t.disposition, t.ref, t.label, d.score FROM breach_triage t"
        " LEFT JOIN breach_detected d USING (breach_id, site) WHERE t.site = ?", (store.site,))}
    fates = {int(r[0]): (r[1], r[2]) for r in store.execute(
        "SELECT incident_id, fate, note FROM incident_triage WHERE site = ?", (store.site,))}
    in_force, covered = [], []
    for b in breaches:
        ch = b_states.get(b["breach_id"])
        b["state"] = _change(ch) if ch else {"state": "new"}
        d = disp.get(b["breach_id"])
        if d is not None:
            b["triage"] = {"disposition": d[1], "ref": d[2], "by": d[3], "detected_score": d[4]}
        (covered if d is not None and d[1] != "window" else in_force).append(b)
    for i in incidents:
        ch = i_states.get(i["incident_id"])
        i["state"] = _change(ch) if ch else {"state": "new"}
        if i["incident_id"] in fates:
            i["triage_note"] = fates[i["incident_id"]][1]
    live = store.execute("SELECT ruleset_id, path, sha256, user, at FROM rulesets WHERE withdrawn_at IS NULL"
                         " AND site = ?", (store.site,)).fetchone()
    counts: dict[str, int] = {"accepted": 0, "suppressed": 0, "window": 0}
    for d in disp.values():
        counts[d[1]] += 1
    section = {
        "counts": {"accepted": counts["accepted"], "suppressed": counts["suppressed"],
                   "in_window": counts["window"]},
        "suppressed": covered,
        "dissolved": [{"incident_id": iid, "note": note} for iid, (fate, note) in sorted(fates.items())
                      if fate == "dissolved"],
        "acceptances": [{**{k: a[k] for k in ("accept_id", "breach_id", "model", "actor", "targets", "why",
                                              "user")},
                         "keys": {k: v for k, v in a["keys"]}, "at": _iso(a["at"])}
                        for a in store_triage.acceptances(store)],
        "rules": None if live is None else {"ruleset_id": live[0], "path": live[1], "sha256": live[2],
                                            "user": live[3], "at": _iso(live[4])},
        "windows": [{**{k: w[k] for k in ("window_id", "name", "devices", "targets", "classes", "note", "user")},
                     "start": _iso(w["start_ts"]), "end": _iso(w["end_ts"]), "at": _iso(w["at"])}
                    for w in store_triage.windows(store)],
    }
    return in_force, incidents, section


__all__ = ["apply", "has_triage"]
