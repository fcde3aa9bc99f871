"""Re-scoring: the detected breaches and incidents, with triage inputs applied.

Precedence per breach: an acceptance, then an allow rule, then a maintenance window. Accepted and
suppressed breaches are kept (with what covered them) at score 0 and leave their incident; a
breach inside a window keeps its place in the log, labelled, scored at most WINDOW_SCORE, and
opens no incident. Each detected incident is regrouped from its remaining breaches only (triage
never joins what detection kept apart): unchanged, it is kept as detected; changed, it is rebuilt
by the same analyst code (keeping its id when it stays one incident); emptied, it dissolves with
a note. With no inputs the result is exactly the detected breaches and incidents.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from plantwatch.core.detection import incidents as incidents_mod
from plantwatch.core.detection import scoring
from plantwatch.core.detection.records import Breach, Incident
from plantwatch.core.detection.triage.match import acceptance_matches, rule_matches, window_matches
from plantwatch.core.detection.triage.records import BreachFacts, Disposition, TriageInputs

WINDOW_SCORE = 0.1   # a breach of planned work is shown, but counts for little


@dataclass(slots=True)
class Rescored:
    breaches: list[Breach]                                    # every breach, effective score/incident
    incidents: list[Incident]
    dispositions: dict[int, Disposition] = field(default_factory=dict)
    dissolved: dict[int, str] = field(default_factory=dict)   # detected incident id -> note
    rescored: dict[int, int] = field(default_factory=dict)    # incident id -> detected incident id


def disposition(f: BreachFacts, inputs: TriageInputs) -> Disposition | None:
    for a in sorted(inputs.acceptances, key=lambda a: a.accept_id):
        if acceptance_matches(a, f):
            return Disposition(f.breach_id, "accepted", a.accept_id, a.why)
    for r in inputs.rules:
        if rule_matches(r, f):
            return Disposition(f.breach_id, "suppressed", r.ruleset_id, r.name)
    for w in sorted(inputs.windows, key=lambda w: w.window_id):
        if window_matches(w, f):
            return Disposition(f.breach_id, "window", w.window_id, w.name)
    return None


def _dissolve_note(bs: list[Breach], disp: dict[int, Disposition]) -> str:
    kinds: dict[str, int] = {}
    for b in bs:
        k = disp[b.breach_id].kind if b.breach_id in disp else "below the incident threshold"
        kinds[k] = kinds.get(k, 0) + 1
    words = {"accepted": "accepted as normal", "suppressed": "suppressed by a rule",
             "window": "inside a maintenance window"}
    parts = [f"{n} {words.get(k, k)}" for k, n in sorted(kinds.items())]
    return f"dissolved: of its {len(bs)} breach(es), " + ", ".join(parts)


def rescore(breaches: list[Breach], detected: list[Incident], facts: dict[int, BreachFacts],
            inputs: TriageInputs, cfg: dict[str, Any], new_devices: set[str],
            names: dict[str, str]) -> Rescored:
    """`breaches` as detected (their incident_id is the detected incident), in the log's order."""
    disp = {} if inputs.empty else {
        b.breach_id: d for b in breaches
        if b.breach_id in facts and (d := disposition(facts[b.breach_id], inputs)) is not None}
    if not disp:
        return Rescored([replace(b) for b in breaches], list(detected))
    out = []
    for b in breaches:
        d = disp.get(b.breach_id)
        if d is None:
            out.append(replace(b))
        elif d.kind == "window":
            out.append(replace(b, score=min(b.score, WINDOW_SCORE), incident_id=None))
        else:
            out.append(replace(b, score=0.0, incident_id=None))
    members: dict[int, list[int]] = {}
    for i, b in enumerate(breaches):
        if b.incident_id is not None:
            members.setdefault(b.incident_id, []).append(i)
    res = Rescored(out, [], disp)
    for inc in detected:
        idx = members.get(inc.incident_id, [])
        if not any(breaches[i].breach_id in disp for i in idx):
            res.incidents.append(inc)
            continue
        keep = [out[i] for i in idx if breaches[i].breach_id not in disp]
        for b in keep:
            b.incident_id = None
        rebuilt = incidents_mod.build(keep, cfg, new_devices, names) if keep else []
        if not rebuilt:
            res.dissolved[inc.incident_id] = _dissolve_note([breaches[i] for i in idx], disp)
            continue
        # the detected id stays with the part that still starts with its first breach (then the
        # ids cannot collide), else with the highest-scoring part
        k = next((j for j, r in enumerate(rebuilt) if r.incident_id == inc.incident_id), 0)
        old_id = rebuilt[k].incident_id
        for b in keep:
            if b.incident_id == old_id:
                b.incident_id = inc.incident_id
        rebuilt[k] = replace(rebuilt[k], incident_id=inc.incident_id)
        for r in rebuilt:
            res.rescored[r.incident_id] = inc.incident_id
        res.incidents.extend(rebuilt)
    res.incidents.sort(key=lambda i: (-i.score, i.first_ts))
    return res


def device_threat(breaches: list[Breach], devices: set[str], cfg: dict[str, Any]) -> list[tuple[str, int, float, int]]:
    """The hourly threat scores (device, hour ts, score, breaches) of `devices` from `breaches`,
    as the detector computes them (a device's own breaches fully, those aimed at it in part)."""
    sc = cfg["scoring"]
    share = float(sc["secondary_factor"])
    events = []
    for b in breaches:
        if b.device in devices:
            events.append((b.device, b.first_ts, b.last_ts, b.score, True))
        events += [(d, b.first_ts, b.last_ts, b.score * share, False) for d in b.devices[1:] if d in devices]
    series = scoring.threat_over_time(events, float(sc["score_decay_hours"]))
    return [(dev, ts, s, n) for dev, ser in sorted(series.items()) for ts, (s, n) in sorted(ser.items())]


__all__ = ["WINDOW_SCORE", "Rescored", "disposition", "rescore", "device_threat"]
