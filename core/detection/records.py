"""What detection produces: breaches and the incidents that group them, as typed records.

A `Breach` is one model's finding: which device did what, when, how surprising it was (score,
importance), a sentence explaining it and the evidence (session ids and packet references). An
`Incident` groups breaches into a story in phases. `model` fields hold the model's stable id
(`ics.new_action`, see plantwatch.core.detection.models); titles are for display only and are
looked up from the id by whoever shows them. Packet references are packed
(plantwatch.core.capture.refs.PacketRef).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Breach:
    breach_id: int                 # 63-bit deterministic id
    model: str                     # the model's id
    category: str
    severity: str                  # low | medium | high | critical
    phase: str                     # one of models.base.PHASES
    attack_ids: list[str]
    device: str                    # the device that did it
    devices: list[str]             # the device first, then the devices it targeted
    first_ts: int                  # evidence span, ns of packet time
    last_ts: int
    score: float                   # 0..1
    importance: float              # -log10 of the probability under the baseline
    explanation: str
    sessions: list[int]            # evidence session ids
    refs: list[int]                # evidence packet references (packed)
    details: dict[str, Any]        # the counts behind the explanation (JSON-safe)
    incident_id: int | None = None  # set when an incident takes the breach in


@dataclass(slots=True)
class IncidentPhase:
    phase: str
    first_ts: int
    last_ts: int
    models: list[str] = field(default_factory=list)      # model ids, in order of appearance
    attack_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class TimelineEntry:
    ts: int
    phase: str
    model: str                     # model id
    device: str
    score: float
    explanation: str
    breach_id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Incident:
    incident_id: int
    title: str
    device: str                    # the main device (highest combined score)
    devices: list[str]
    first_ts: int
    last_ts: int
    score: float
    phases: list[IncidentPhase]    # in the order they happened
    attack_ids: list[str]
    narrative: str
    timeline: list[TimelineEntry]
    breaches: int                  # how many breaches it holds


__all__ = ["Breach", "Incident", "IncidentPhase", "TimelineEntry"]
