"""Firmware versions compared the way advisories mean them, and version ranges.

A version is split into numeric and alphabetic parts after an optional leading 'V'/'FW'/'Rev'
("V4.2.3" -> 4, 2, 3; "2.011" -> 2, 11; "03.00.05" -> 3, 0, 5); numbers compare as numbers and
missing trailing parts as zero (so "2.11" == "2.011" and "4.2" == "4.2.0"). A range is a dict with
any of "version" (exactly), "from" / "from_excl" (lower bound, inclusive / exclusive), "to" /
"to_excl" (upper bound); an empty range list means every version.
"""

from __future__ import annotations

import re

_PREFIX = re.compile(r"^\s*(?:fw|firmware|rev|revision|version|ver|v)\s*\.?\s*", re.I)
_PART = re.compile(r"\d+|[a-z]+", re.I)


def parse(version: str) -> tuple:
    """Sortable key of a version string; () when it holds no digit."""
    v = _PREFIX.sub("", version.strip())
    if not re.search(r"\d", v):
        return ()
    parts = [(0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in _PART.findall(v)]
    while parts and parts[-1] == (0, 0, ""):
        parts.pop()
    return tuple(parts)


def compare(a: str, b: str) -> int:
    ka, kb = parse(a), parse(b)
    n = max(len(ka), len(kb))
    ka += ((0, 0, ""),) * (n - len(ka))
    kb += ((0, 0, ""),) * (n - len(kb))
    return (ka > kb) - (ka < kb)


def in_range(version: str, rng: dict[str, str]) -> bool:
    if not parse(version):
        return False
    checks = {"version": lambda c: c == 0, "from": lambda c: c >= 0, "from_excl": lambda c: c > 0,
              "to": lambda c: c <= 0, "to_excl": lambda c: c < 0}
    bounds = [(k, v) for k, v in rng.items() if k in checks and v]
    return bool(bounds) and all(checks[k](compare(version, v)) for k, v in bounds)


def affected(version: str, ranges: list[dict[str, str]]) -> bool:
    """`version` falls in one of `ranges` (an empty list: every version)."""
    if not ranges:
        return True
    return any(in_range(version, r) for r in ranges)


_OPS = {"<": "to_excl", "<=": "to", ">": "from_excl", ">=": "from", "=": "version"}


def parse_range(text: str) -> dict[str, str] | None:
    """A range from advisory text: "<V4.2.3", "<= 2.011", ">=1.0 <2.0", "vers:intdot/>=1.0|<2.0",
    "V3.0 <= version < V3.2", "All versions" (-> {}), or a bare version (exactly). None: not a range."""
    t = text.strip()
    if re.fullmatch(r"(?i)all(\s+versions)?|\*|-", t):
        return {}
    if t.lower().startswith("vers:"):
        t = t.split("/", 1)[1] if "/" in t else ""
        if t.strip() == "*":
            return {}
        t = t.replace("|", " ")
    between = re.fullmatch(r"(?i)(\S+)\s*(<=|<)\s*(?:version|versions|v)?\s*(<=|<)\s*(\S+)", t)
    if between:
        lo, op1, op2, hi = between.groups()
        return {("from" if op1 == "<=" else "from_excl"): lo, ("to" if op2 == "<=" else "to_excl"): hi}
    out: dict[str, str] = {}
    for op, ver in re.findall(r"(<=|>=|<|>|=)?\s*([^\s<>=|,]+)", t):
        if not parse(ver):
            if ver.lower() in ("all", "versions", "version", "and", "prior", "earlier", "before"):
                continue
            return None
        out[_OPS[op or "="]] = ver
    if re.search(r"(?i)and (prior|earlier)|or (earlier|prior)", t) and "version" in out:
        out["to"] = out.pop("version")
    return out or None
