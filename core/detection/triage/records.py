"""The typed inputs and outputs of triage."""

from __future__ import annotations

from dataclasses import dataclass, field

STATES = ("new", "acknowledged", "resolved", "false positive")
# what triage did to a breach: taken as normal, allowed by a rule, inside a maintenance window
DISPOSITIONS = ("accepted", "suppressed", "window")


@dataclass(frozen=True, slots=True)
class BreachFacts:
    """What a breach is about, for matching: from the breach, its details and its evidence sessions."""
    breach_id: int
    model: str
    actor: str
    targets: tuple[str, ...]
    first_ts: int
    last_ts: int
    ports: frozenset[int] = frozenset()
    protocols: frozenset[str] = frozenset()
    operations: frozenset[str] = frozenset()     # operation names
    classes: frozenset[str] = frozenset()        # READ / DISCOVER / ACTION / REPROGRAM
    keys: tuple[tuple[str, tuple[str, ...]], ...] = ()   # model-specific keys (user, endpoints...)
    names: tuple[tuple[str, str], ...] = ()      # (address, device name) of actor and targets
    # a change of the actor's own state (its stated identity), done to it, not by it: last_ts is
    # when the new state was first seen
    own_change: bool = False


@dataclass(frozen=True, slots=True)
class Acceptance:
    accept_id: int
    breach_id: int
    model: str
    actor: str
    targets: tuple[str, ...]
    keys: tuple[tuple[str, tuple[str, ...]], ...]
    why: str
    user: str
    at: int                                      # wall-clock ns


@dataclass(frozen=True, slots=True)
class Rule:
    """One allow rule; empty fields match anything. Within a field the values are alternatives;
    every value the breach has must be allowed (a rule allows what it names, nothing beyond)."""
    name: str
    models: tuple[str, ...] = ()                 # model id globs (ics.*)
    src: tuple[str, ...] = ()                    # CIDRs, addresses or device-name globs
    dst: tuple[str, ...] = ()
    ports: tuple[tuple[int, int], ...] = ()      # inclusive ranges
    protocols: tuple[str, ...] = ()              # protocol name globs
    operations: tuple[str, ...] = ()             # operation classes or name globs
    hours: tuple[int, int] | None = None         # minutes of the day [from, to), UTC packet time
    weekdays: tuple[int, ...] = ()               # 0 = Monday
    note: str = ""
    ruleset_id: int = 0


@dataclass(frozen=True, slots=True)
class Window:
    window_id: int
    name: str
    start_ts: int                                # packet time ns
    end_ts: int
    devices: tuple[str, ...]                     # who does the work (addresses, CIDRs, name globs)
    targets: tuple[str, ...] = ()                # on what; empty: any
    classes: tuple[str, ...] = ()                # operation classes expected; empty: any
    note: str = ""
    user: str = ""
    at: int = 0


@dataclass(frozen=True, slots=True)
class Disposition:
    breach_id: int
    kind: str                                    # one of DISPOSITIONS
    ref: int                                     # accept_id, ruleset_id or window_id
    label: str                                   # the acceptance's why, the rule's or window's name


@dataclass(slots=True)
class TriageInputs:
    acceptances: list[Acceptance] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.acceptances or self.rules or self.windows)


__all__ = ["STATES", "DISPOSITIONS", "BreachFacts", "Acceptance", "Rule", "Window", "Disposition",
           "TriageInputs"]
