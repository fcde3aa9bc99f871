"""Breach and incident records as store rows (the columns of core/store/migrations.py V2)."""

from __future__ import annotations

import json
from typing import Any

from plantwatch.core.detection.records import Breach, Incident


def breach_row(b: Breach) -> dict[str, Any]:
    return {
        "breach_id": b.breach_id, "model": b.model, "category": b.category, "severity": b.severity,
        "phase": b.phase, "attack_ids": json.dumps(b.attack_ids), "device": b.device,
        "devices": json.dumps(b.devices), "first_ts": b.first_ts, "last_ts": b.last_ts,
        "score": b.score, "importance": b.importance, "explanation": b.explanation,
        "sessions": json.dumps(b.sessions), "refs": json.dumps(b.refs),
        "details": json.dumps(b.details), "incident_id": b.incident_id,
    }


def incident_row(i: Incident) -> dict[str, Any]:
    return {
        "incident_id": i.incident_id, "title": i.title, "device": i.device,
        "devices": json.dumps(i.devices), "first_ts": i.first_ts, "last_ts": i.last_ts,
        "score": i.score, "phases": json.dumps([p.as_dict() for p in i.phases]),
        "attack_ids": json.dumps(i.attack_ids), "narrative": i.narrative,
        "timeline": json.dumps([e.as_dict() for e in i.timeline]), "breaches": i.breaches,
    }


__all__ = ["breach_row", "incident_row"]
