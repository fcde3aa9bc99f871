"""The allow-rules file (TOML), parsed into Rules. The format is documented in README.md
("Tuning and triage"); a mistake is a RulesError naming the rule and the field."""

from __future__ import annotations

import tomllib
from typing import Any

from plantwatch.core.detection.triage.records import Rule

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FIELDS = {"name", "models", "src", "dst", "ports", "protocols", "operations", "hours", "weekdays", "note"}


class RulesError(ValueError):
    """A rules file that cannot be used; str() says where."""


def _strings(where: str, v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise RulesError(f"{where}: expected a string or a list of strings")
    return tuple(x.strip() for x in v)


def _ports(where: str, v: Any) -> tuple[tuple[int, int], ...]:
    out = []
    for x in v if isinstance(v, list) else [v]:
        try:
            if isinstance(x, int) and not isinstance(x, bool):
                a = b = x
            elif isinstance(x, str) and "-" in x:
                a, b = (int(p) for p in x.split("-", 1))
            else:
                a = b = int(x)
        except (TypeError, ValueError):
            raise RulesError(f"{where}: {x!r} is not a port or a range like \"1000-2000\"") from None
        if not (0 <= a <= b <= 65535):
            raise RulesError(f"{where}: {x!r} is not a port range within 0-65535")
        out.append((a, b))
    return tuple(out)


def parse_hhmm(where: str, text: str) -> int:
    try:
        h, m = text.strip().split(":")
        hh, mm = int(h), int(m)
    except ValueError:
        raise RulesError(f"{where}: {text!r} is not a time like 06:00") from None
    if not (0 <= hh <= 24 and 0 <= mm < 60) or hh * 60 + mm > 1440:
        raise RulesError(f"{where}: {text!r} is not a time of day")
    return hh * 60 + mm


def _hours(where: str, v: Any) -> tuple[int, int]:
    if not isinstance(v, str) or v.count("-") != 1:
        raise RulesError(f"{where}: expected \"HH:MM-HH:MM\" (UTC)")
    a, b = v.split("-")
    return parse_hhmm(where, a), parse_hhmm(where, b)


def _weekdays(where: str, v: Any) -> tuple[int, ...]:
    out = []
    for d in _strings(where, v):
        key = d.lower()[:3]
        if key not in WEEKDAYS:
            raise RulesError(f"{where}: {d!r} is not a weekday (mon..sun)")
        out.append(WEEKDAYS.index(key))
    return tuple(sorted(set(out)))


def parse_rules(text: str, ruleset_id: int = 0) -> list[Rule]:
    """Rules from the text of a rules file: `[[allow]]` tables, each needing a `name` and at
    least one condition."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RulesError(f"not valid TOML ({e})") from None
    extra = set(doc) - {"allow"}
    if extra:
        raise RulesError(f"unknown table(s) {', '.join(sorted(extra))}; rules are [[allow]] tables")
    tables = doc.get("allow", [])
    if not isinstance(tables, list):
        raise RulesError("allow: expected [[allow]] tables")
    rules, seen = [], set()
    for n, t in enumerate(tables, start=1):
        name = t.get("name")
        where = f"rule {n}" + (f" ({name})" if isinstance(name, str) else "")
        if not isinstance(name, str) or not name.strip():
            raise RulesError(f"{where}: needs a name")
        if name in seen:
            raise RulesError(f"{where}: the name is used twice")
        seen.add(name)
        unknown = set(t) - FIELDS
        if unknown:
            raise RulesError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if not set(t) - {"name", "note"}:
            raise RulesError(f"{where}: allows everything; give at least one condition")
        note = t.get("note", "")
        if not isinstance(note, str):
            raise RulesError(f"{where}.note: expected a string")
        rules.append(Rule(
            name=name.strip(), note=note, ruleset_id=ruleset_id,
            models=_strings(f"{where}.models", t["models"]) if "models" in t else (),
            src=_strings(f"{where}.src", t["src"]) if "src" in t else (),
            dst=_strings(f"{where}.dst", t["dst"]) if "dst" in t else (),
            ports=_ports(f"{where}.ports", t["ports"]) if "ports" in t else (),
            protocols=_strings(f"{where}.protocols", t["protocols"]) if "protocols" in t else (),
            operations=_strings(f"{where}.operations", t["operations"]) if "operations" in t else (),
            hours=_hours(f"{where}.hours", t["hours"]) if "hours" in t else None,
            weekdays=_weekdays(f"{where}.weekdays", t["weekdays"]) if "weekdays" in t else ()))
    return rules


__all__ = ["RulesError", "parse_rules", "parse_hhmm", "WEEKDAYS"]
