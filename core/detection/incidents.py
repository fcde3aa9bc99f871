"""The analyst: groups breaches into incidents and tells each as a story in phases.

Two breaches join when they are close in time (`gap_s` between their spans) and share a device:
the same actor, or one's actor is the other's target (a chain of devices). A group becomes an
incident when one breach scores at least `min_score`, or when it holds `min_models` distinct
models whose combined score reaches `min_combined`. Phases (entry, privilege, discovery, lateral
movement, command and control, impact) come from the models and are listed in the order they
happened; every phase carries its MITRE ATT&CK for ICS technique ids.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plantwatch.core.detection.models.base import NS, PHASES, text_id
from plantwatch.core.detection.records import Breach, Incident, IncidentPhase, TimelineEntry
from plantwatch.core.detection.scoring import combine

PHASE_WORDS = {
    "entry": "Entry", "privilege": "Privileged access", "discovery": "Discovery",
    "lateral movement": "Lateral movement", "command and control": "Command and control",
    "impact": "Impact",
}


def _hm(ts: int) -> str:
    return datetime.fromtimestamp(ts / NS, tz=UTC).strftime("%H:%M")


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts / NS, tz=UTC).strftime("%Y-%m-%d")


class _Union:
    def __init__(self, n: int) -> None:
        self.p = list(range(n))

    def find(self, i: int) -> int:
        while self.p[i] != i:
            self.p[i] = self.p[self.p[i]]
            i = self.p[i]
        return i

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[max(ra, rb)] = min(ra, rb)


def group(breaches: list[Breach], gap_s: float) -> list[list[int]]:
    """Indices of breaches, grouped by shared devices and time (deterministic order)."""
    n = len(breaches)
    u = _Union(n)
    gap = int(gap_s * NS)
    by_actor: dict[str, list[int]] = {}
    for i, b in enumerate(breaches):
        by_actor.setdefault(b.device, []).append(i)
    for i, b in enumerate(breaches):
        for k, dev in enumerate(b.devices):
            for j in by_actor.get(dev, ()):
                if j == i:
                    continue
                o = breaches[j]
                # a target joins the story only if it acts after it was touched (a pivot)
                if k > 0 and o.last_ts < b.first_ts:
                    continue
                if max(b.first_ts, o.first_ts) - min(b.last_ts, o.last_ts) <= gap:
                    u.join(i, j)
    out: dict[int, list[int]] = {}
    for i in range(n):
        out.setdefault(u.find(i), []).append(i)
    return [sorted(g, key=lambda k: (breaches[k].first_ts, breaches[k].breach_id))
            for _, g in sorted(out.items())]


def _title(main: str, is_new: bool, phases: list[str], models: set[str]) -> str:
    parts = []
    if "discovery" in phases:
        parts.append("Network reconnaissance")
    if "ics.reprogram" in models:
        parts.append("program transfer")
    if "ics.new_action" in models:
        parts.append("ICS commands")
    elif {"ics.protocol", "ics.it_to_ics"} & models:
        parts.append("ICS access")
    if "command and control" in phases and len(parts) < 2:
        parts.append("suspicious external connections")
    if "privilege" in phases and len(parts) < 2:
        parts.append("administrative remote access")
    if not parts:
        parts.append("Unusual activity")
    parts[0] = parts[0][0].upper() + parts[0][1:]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{text} by {'new device ' if is_new else ''}{main}"


def build(breaches: list[Breach], cfg: dict[str, Any], new_devices: set[str] | None = None,
          names: dict[str, str] | None = None) -> list[Incident]:
    """Incidents from breaches (sets each grouped breach's `incident_id`)."""
    c = cfg["incidents"]
    new_devices = new_devices or set()
    names = names or {}
    out = []
    for g in group(breaches, float(c["gap_s"])):
        bs = [breaches[i] for i in g]
        scores = [b.score for b in bs]
        models = {b.model for b in bs}
        total = combine(scores)
        if not (max(scores) >= float(c["min_score"])
                or (len(models) >= int(c["min_models"]) and total >= float(c["min_combined"]))):
            continue
        weight: dict[str, float] = {}
        for b in bs:
            weight[b.device] = weight.get(b.device, 0.0) + b.score
        main = sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        devices = list(dict.fromkeys([main] + [d for b in bs for d in b.devices]))
        phases: dict[str, IncidentPhase] = {}
        for b in bs:  # bs is in time order
            p = phases.setdefault(b.phase, IncidentPhase(b.phase, b.first_ts, b.last_ts))
            p.first_ts = min(p.first_ts, b.first_ts)
            p.last_ts = max(p.last_ts, b.last_ts)
            if b.model not in p.models:
                p.models.append(b.model)
            for t in b.attack_ids:
                if t not in p.attack_ids:
                    p.attack_ids.append(t)
        order = sorted(phases.values(), key=lambda p: (p.first_ts, PHASES.index(p.phase)))
        attack = list(dict.fromkeys(t for p in order for t in p.attack_ids))
        is_new = main in new_devices
        title = _title(main, is_new, [p.phase for p in order], models)
        first, last = min(b.first_ts for b in bs), max(b.last_ts for b in bs)
        who = main + (f" ({names[main]})" if names.get(main) else "")
        until = _hm(last) if _day(last) == _day(first) else f"{_day(last)} {_hm(last)}"
        lines = [f"On {_day(first)} between {_hm(first)} and {until} UTC, "
                 f"{'a new device ' if is_new else ''}{who} raised {len(bs)} breach(es) of "
                 f"{len(models)} model(s), in {len(order)} phase(s)."]
        for p in order:
            top = max((b for b in bs if b.phase == p.phase), key=lambda b: (b.score, -b.first_ts))
            lines.append(f"{PHASE_WORDS[p.phase]} ({_hm(p.first_ts)}): {top.explanation}")
        timeline = [TimelineEntry(ts=b.first_ts, phase=b.phase, model=b.model, device=b.device,
                                  score=b.score, explanation=b.explanation, breach_id=b.breach_id)
                    for b in bs]
        iid = text_id(f"incident|{bs[0].breach_id}")
        for b in bs:
            b.incident_id = iid
        out.append(Incident(
            incident_id=iid, title=title, device=main, devices=devices, first_ts=first, last_ts=last,
            score=round(total, 4), phases=order, attack_ids=attack, narrative=" ".join(lines),
            timeline=timeline, breaches=len(bs)))
    out.sort(key=lambda i: (-i.score, i.first_ts))
    return out
