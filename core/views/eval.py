"""Ground-truth comparison: which model detected each step of a known attack, recall, precision,
the attacker's rank by threat score, and whether one incident tells the whole story in order.

The ground truth is demo_data/ground_truth.json's format: `attacker.ip` and `steps`, each with
`id`, `start_ns`/`end_ns`, `source` and the `models` expected to fire (model ids or titles; the
evaluation answers in the file's own words). A breach detects a step
for a model when it is of that model, the step's source is among its devices, and its time span
meets the step's (within `tolerance_s`). A breach is a true positive when it involves the
attacker and falls within the attack (first step start to last step end, with the tolerance).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantwatch.core.detection.models import MODELS, model_id, title_of
from plantwatch.core.detection.models.base import NS, PHASES
from plantwatch.core.store.database import Store


class TruthError(ValueError):
    """A ground-truth file cannot be used. str() is one line naming the file."""


def load_truth(path: str | Path) -> dict[str, Any]:
    p = str(path)
    try:
        doc = json.loads(Path(p).read_text())
    except FileNotFoundError:
        raise TruthError(f"{p}: file not found") from None
    except (OSError, ValueError) as e:
        raise TruthError(f"{p}: not a ground-truth JSON file ({e})") from None
    if not isinstance(doc, dict) or "steps" not in doc or "attacker" not in doc:
        raise TruthError(f"{p}: needs 'attacker' and 'steps'")
    return doc


def step_phase(models: list[str]) -> str | None:
    """The phase a step stands for: impact if any of its models is an impact model, else the
    phase of its first model."""
    phases = [MODELS[i].phase for i in map(model_id, models) if i is not None]
    if not phases:
        return None
    return "impact" if "impact" in phases else phases[0]


@dataclass(frozen=True, slots=True)
class _Stored:
    """The fields of a stored breach the evaluation reads."""
    breach_id: int
    model: str                 # model id
    device: str
    devices: tuple[str, ...]
    first_ts: int
    last_ts: int
    score: float
    incident_id: int | None


def _breaches(store: Store) -> list[_Stored]:
    cur = store.execute("SELECT breach_id, model, device, devices, first_ts, last_ts, score, incident_id"
                        " FROM breaches WHERE site = ? ORDER BY first_ts, breach_id", (store.site,))
    return [_Stored(b, model_id(m) or m, d, tuple(json.loads(ds or "[]")), a, z, s, i)
            for b, m, d, ds, a, z, s, i in cur.fetchall()]


def evaluate(store: Store, truth: dict[str, Any], tolerance_s: float = 300.0) -> dict[str, Any]:
    tol = int(tolerance_s * NS)
    attacker = truth["attacker"]["ip"]
    steps = [s for s in truth["steps"] if s.get("models")]
    breaches = _breaches(store)
    rows = []
    pairs = hit_pairs = 0
    for s in steps:
        a, z = int(s["start_ns"]), int(s["end_ns"])
        per_model = {}
        for m in s["models"]:
            hits = [b for b in breaches if b.model == (model_id(m) or m) and s["source"] in b.devices
                    and b.first_ts - tol <= z and b.last_ts + tol >= a]
            per_model[m] = [b.breach_id for b in hits]
            pairs += 1
            hit_pairs += bool(hits)
        found = [m for m, h in per_model.items() if h]
        expected = {model_id(m) or m for m in s["models"]}
        other = sorted({title_of(b.model) for b in breaches if s["source"] in b.devices
                        and b.first_ts - tol <= z and b.last_ts + tol >= a
                        and b.model not in expected})
        rows.append({"id": s["id"], "title": s.get("title", ""), "start": s.get("start"),
                     "phase": step_phase(s["models"]), "expected": s["models"], "detected_by": found,
                     "missed": [m for m in s["models"] if m not in found], "also": other,
                     "status": "detected" if len(found) == len(s["models"]) else ("partial" if found else "missed")})
    lo = min((int(s["start_ns"]) for s in steps), default=0) - tol
    hi = max((int(s["end_ns"]) for s in steps), default=0) + tol
    tp = [b for b in breaches if attacker in b.devices and b.first_ts <= hi and b.last_ts >= lo]
    # the attacker's rank among devices by peak threat score
    ranking = [d for d, _ in store.execute(
        "SELECT device, MAX(score) FROM device_scores WHERE site = ? GROUP BY device ORDER BY MAX(score) DESC, device",
        (store.site,)).fetchall()]
    rank = ranking.index(attacker) + 1 if attacker in ranking else None
    # incidents: the one holding most of the attack's breaches
    inc_ids = [b.incident_id for b in tp if b.incident_id is not None]
    incident = None
    if inc_ids:
        main = max(set(inc_ids), key=lambda i: (inc_ids.count(i), -i))
        r = store.execute("SELECT incident_id, title, phases FROM incidents WHERE incident_id = ? AND site = ?",
                          (main, store.site)).fetchone()
        phases = json.loads(r[2]) if r else []
        order = [p["phase"] for p in phases]
        want = []
        for row in sorted(rows, key=lambda r: r["start"] or ""):
            if row["detected_by"] and row["phase"] and row["phase"] not in want:
                want.append(row["phase"])
        seen = [p for p in order if p in want]
        incident = {
            "incident_id": main, "title": r[1] if r else "", "phases": order,
            "holds_all_attack_breaches": len(inc_ids) == len(tp) and len(set(inc_ids)) == 1,
            "attack_breaches_outside": len(tp) - inc_ids.count(main),
            "phases_in_order": seen == want,
            "expected_phase_order": want,
        }
    n_inc = store.execute("SELECT COUNT(*) FROM incidents WHERE site = ?", (store.site,)).fetchone()[0]
    return {
        "attacker": attacker, "steps": rows,
        "recall": round(hit_pairs / pairs, 4) if pairs else None,
        "steps_detected": sum(r["status"] == "detected" for r in rows), "steps_total": len(rows),
        "breaches": len(breaches), "true_positives": len(tp),
        "precision": round(len(tp) / len(breaches), 4) if breaches else None,
        "attacker_rank": rank, "devices_ranked": len(ranking), "incidents": n_inc, "incident": incident,
        "false_positive_max_score": max((b.score for b in breaches if b not in tp), default=0.0),
    }


def render(r: dict[str, Any]) -> str:
    lines = [f"Ground truth: attack by {r['attacker']}, {r['steps_total']} step(s)"]
    for s in r["steps"]:
        lines.append(f"  {s['status']:8s} {s['id']} ({s['phase']}): {s['title']}")
        for m in s["expected"]:
            lines.append(f"      {'+' if m in s['detected_by'] else '-'} {m}")
        if s["also"]:
            lines.append(f"      also: {', '.join(s['also'])}")
    lines.append(f"Recall: {r['recall']:.0%} of expected (step, model) pairs; "
                 f"{r['steps_detected']}/{r['steps_total']} steps fully detected")
    if r["precision"] is not None:
        lines.append(f"Precision: {r['precision']:.0%} ({r['true_positives']} of {r['breaches']} breaches "
                     f"belong to the attack; the highest other breach scores {r['false_positive_max_score']:.2f})")
    else:
        lines.append("Precision: no breach")
    lines.append(f"Attacker's rank by threat score: {r['attacker_rank']} of {r['devices_ranked']}")
    inc = r["incident"]
    if inc:
        lines.append(f"Incident: {inc['title']}")
        lines.append(f"  phases: {' -> '.join(inc['phases'])}")
        lines.append(f"  holds the whole attack: {'yes' if inc['holds_all_attack_breaches'] else 'no'}; "
                     f"phases in order: {'yes' if inc['phases_in_order'] else 'no'} "
                     f"(expected {' -> '.join(inc['expected_phase_order'])})")
    else:
        lines.append("Incident: none holds the attack")
    lines.append(f"Incidents in the store: {r['incidents']}")
    return "\n".join(lines)


__all__ = ["evaluate", "render", "load_truth", "TruthError", "PHASES"]
