"""The versioned state of a pipeline component, kept in the store between runs.

A stateful component (the session tracker, the device inventory, the baseline) names the
attributes that make up its memory (`STATE_FRAMES`: polars frames, `STATE_SCALARS`: integers)
and the version of that layout (`STATE_VERSION`). `to_state()` takes them out; `from_state()`
puts them back after checking them: a state written by an older layout is brought up to date by
the component's `STATE_MIGRATIONS` (one function per step) or refused, a newer one is refused, and
so is a frame whose columns or types are not the ones the component works with. A resumed run
therefore continues from exactly what was saved, or stops with one line saying why.

Version 0 is the layout plantwatch saved before versions existed (main at 5b49984): the same
attributes, saved by their names, so its upgrade to version 1 only checks them.
core/store/state.py writes a ComponentState as Arrow IPC bytes (no pickle: a store is data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import polars as pl


class StateError(ValueError):
    """A saved state this code cannot resume from. str() is one line."""


@dataclass
class ComponentState:
    version: int
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    scalars: dict[str, int] = field(default_factory=dict)


Migration = Callable[[ComponentState], ComponentState]


def _same_layout(state: ComponentState) -> ComponentState:
    return ComponentState(state.version + 1, state.frames, state.scalars)


class Stateful:
    STATE_VERSION: ClassVar[int] = 1
    STATE_FRAMES: ClassVar[tuple[str, ...]] = ()
    STATE_SCALARS: ClassVar[tuple[str, ...]] = ()
    # step from version v to v + 1; version 0 (unversioned, same names) upgrades as it is
    STATE_MIGRATIONS: ClassVar[dict[int, Migration]] = {0: _same_layout}

    def to_state(self) -> ComponentState:
        frames = {k: getattr(self, k) for k in self.STATE_FRAMES if getattr(self, k) is not None}
        return ComponentState(self.STATE_VERSION, frames, {k: int(getattr(self, k)) for k in self.STATE_SCALARS})

    def state_columns(self, name: str) -> dict[str, pl.DataType | None] | None:
        """The columns frame `name` must have, with their types (a type None: any); by default
        those of the frame the component starts with (None: it starts as None, not checked)."""
        current = getattr(self, name)
        return dict(current.schema) if isinstance(current, pl.DataFrame) else None

    def from_state(self, state: ComponentState) -> None:
        kind = type(self).__name__
        if state.version > self.STATE_VERSION:
            raise StateError(f"{kind} state version {state.version} is newer than this plantwatch "
                             f"reads ({self.STATE_VERSION})")
        while state.version < self.STATE_VERSION:
            step = self.STATE_MIGRATIONS.get(state.version)
            if step is None:
                raise StateError(f"{kind} state version {state.version} cannot be brought up to "
                                 f"version {self.STATE_VERSION}")
            state = step(state)
        unknown = sorted(set(state.frames) - set(self.STATE_FRAMES) | set(state.scalars) - set(self.STATE_SCALARS))
        missing = sorted(set(self.STATE_SCALARS) - set(state.scalars))
        if unknown or missing:
            raise StateError(f"{kind} state does not match version {self.STATE_VERSION} "
                             f"(unknown: {', '.join(unknown) or 'none'}; missing: {', '.join(missing) or 'none'})")
        for name in self.STATE_FRAMES:
            frame = state.frames.get(name)
            if frame is None:
                if getattr(self, name) is not None:   # only what starts as None may be absent
                    raise StateError(f"{kind} state lacks {name}")
                continue
            want = self.state_columns(name)
            if want is not None:
                got = dict(frame.schema)
                bad = [c for c, t in want.items() if c not in got or t is not None and got[c] != t]
                if bad:
                    raise StateError(f"{kind} state's {name} has other columns or types than "
                                     f"version {self.STATE_VERSION} ({', '.join(bad[:5])})")
        for name in self.STATE_FRAMES:
            setattr(self, name, state.frames.get(name))
        for name, value in state.scalars.items():
            setattr(self, name, int(value))
