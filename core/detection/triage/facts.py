"""BreachFacts from a breach, its details and what its evidence sessions carried; and the keys
an acceptance takes from it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.triage.records import BreachFacts

# the operation class a model is about (its breach's own operations; the session may carry others)
MODEL_CLASSES = {"ics.reprogram": "REPROGRAM", "ics.new_action": "ACTION", "ics.new_discover": "DISCOVER",
                 "ics.identity_changed": "REPROGRAM"}
# models whose breach is a change of its device's own state (firmware, module, name): the work
# that caused it was done to the device by another
OWN_CHANGE_MODELS = frozenset({"ics.identity_changed"})
# details that identify what a breach was about: accepting a breach accepts these values
KEY_DETAILS = ("user", "protocol", "operations", "ports", "endpoints", "subjects", "ja3", "sni",
               "direction", "baseline")


def _values(v: Any) -> tuple[str, ...]:
    if isinstance(v, list | tuple):
        return tuple(sorted({str(x) for x in v}))
    if v is None or isinstance(v, dict):
        return ()
    return (str(v),)


def breach_keys(b: Breach) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The model-specific keys of a breach (RDP user, protocol, operations, ports, endpoints...)."""
    return tuple((k, _values(b.details[k])) for k in KEY_DETAILS if k in b.details and _values(b.details[k]))


def facts_of(b: Breach, sessions: Iterable[tuple[int | None, str]], ops: Iterable[tuple[str, str]],
             names: dict[str, str]) -> BreachFacts:
    """`sessions`: (server port, application name) of its evidence sessions; `ops`: (operation
    name, class name) the actor sent in them; `names`: device names by address."""
    sessions, ops = list(sessions), list(ops)
    ports = {int(p) for p, _ in sessions if p}
    ports |= {int(p) for p in b.details.get("ports", []) if isinstance(p, int)}
    protocols = {a for _, a in sessions if a}
    if isinstance(b.details.get("protocol"), str):
        protocols.add(b.details["protocol"])
    det_ops = b.details.get("operations")
    operations = set(_values(det_ops)) if det_ops else {n for n, _ in ops if n}
    classes = {MODEL_CLASSES[b.model]} if b.model in MODEL_CLASSES else {c for _, c in ops if c}
    targets = tuple(b.devices[1:])
    return BreachFacts(
        breach_id=b.breach_id, model=b.model, actor=b.device, targets=targets, first_ts=b.first_ts,
        last_ts=b.last_ts, ports=frozenset(ports), protocols=frozenset(protocols),
        operations=frozenset(operations), classes=frozenset(classes), keys=breach_keys(b),
        names=tuple(sorted((d, names[d]) for d in {b.device, *targets} if names.get(d))),
        own_change=b.model in OWN_CHANGE_MODELS)


__all__ = ["MODEL_CLASSES", "OWN_CHANGE_MODELS", "KEY_DETAILS", "breach_keys", "facts_of"]
