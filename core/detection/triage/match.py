"""Does an acceptance, a rule or a maintenance window cover a breach? Pure functions of
BreachFacts, on packet time. A field covers a breach only when every value the breach has is
allowed: a rule for port 502 does not hide a breach that also touched port 102."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from plantwatch.core.detection.triage.records import Acceptance, BreachFacts, Rule, Window

NS = 1_000_000_000


def _net(pattern: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return None


def address_matches(pattern: str, address: str, name: str = "") -> bool:
    """An address, a CIDR, or a glob over the device's name or its address text."""
    net = _net(pattern)
    if net is not None:
        try:
            return ipaddress.ip_address(address) in net
        except ValueError:
            return False
    p = pattern.lower()
    return fnmatchcase(address.lower(), p) or bool(name) and fnmatchcase(name.lower(), p)


def _any_address(patterns: tuple[str, ...], address: str, names: dict[str, str]) -> bool:
    return any(address_matches(p, address, names.get(address, "")) for p in patterns)


def _all_globs(patterns: tuple[str, ...], values: frozenset[str]) -> bool:
    return all(any(fnmatchcase(v.lower(), p.lower()) for p in patterns) for v in values)


def _minute(ts: int) -> int:
    t = datetime.fromtimestamp(ts / NS, tz=UTC)
    return t.hour * 60 + t.minute


def _in_hours(hours: tuple[int, int], ts: int) -> bool:
    a, b = hours
    m = _minute(ts)
    return a <= m < b if a < b else (m >= a or m < b)   # a range over midnight wraps


def rule_matches(rule: Rule, f: BreachFacts) -> bool:
    names = dict(f.names)
    if rule.models and not any(fnmatchcase(f.model, p) for p in rule.models):
        return False
    if rule.src and not _any_address(rule.src, f.actor, names):
        return False
    if rule.dst and not (f.targets and all(_any_address(rule.dst, t, names) for t in f.targets)):
        return False
    if rule.ports and not (f.ports and all(any(a <= p <= b for a, b in rule.ports) for p in f.ports)):
        return False
    if rule.protocols and not (f.protocols and _all_globs(rule.protocols, f.protocols)):
        return False
    if rule.operations:
        classes = {c for c in rule.operations if c.upper() == c and c.isalpha()}
        named = f.operations or f.classes
        if not named:
            return False
        ok_cls = bool(f.classes) and f.classes <= classes
        ok_ops = bool(f.operations) and all(
            any(fnmatchcase(o.lower(), p.lower()) for p in rule.operations) for o in f.operations)
        if not (ok_cls or ok_ops):
            return False
    if rule.hours is not None and not (_in_hours(rule.hours, f.first_ts) and _in_hours(rule.hours, f.last_ts)):
        return False
    if rule.weekdays:
        days = {datetime.fromtimestamp(t / NS, tz=UTC).weekday() for t in (f.first_ts, f.last_ts)}
        if not days <= set(rule.weekdays):
            return False
    return True


def window_matches(w: Window, f: BreachFacts) -> bool:
    """Inside the window in packet time, done by a declared device, only to declared targets,
    only of the declared operation classes. A change of a device's own state (a new firmware)
    is planned when the device is what the window works on (its targets; its devices when it
    names no targets) and the new state was first seen inside it: when the old state was last
    seen, before the work, does not matter."""
    names = dict(f.names)
    if f.own_change:
        return (w.start_ts <= f.last_ts <= w.end_ts and _any_address(w.targets or w.devices, f.actor, names)
                and _classes_ok(w, f))
    if f.first_ts < w.start_ts or f.last_ts > w.end_ts:
        return False
    if not _any_address(w.devices, f.actor, names):
        return False
    if w.targets and not all(_any_address(w.targets, t, names) for t in f.targets):
        return False
    return _classes_ok(w, f)


def _classes_ok(w: Window, f: BreachFacts) -> bool:
    return not (w.classes and not (f.classes and f.classes <= {c.upper() for c in w.classes}))


def acceptance_matches(a: Acceptance, f: BreachFacts) -> bool:
    """The same model, actor and keys (targets and each key's values within the accepted ones)."""
    if a.model != f.model or a.actor != f.actor:
        return False
    if not set(f.targets) <= set(a.targets):
        return False
    accepted = dict(a.keys)
    return all(set(values) <= set(accepted.get(name, ())) for name, values in f.keys)


__all__ = ["address_matches", "rule_matches", "window_matches", "acceptance_matches"]
