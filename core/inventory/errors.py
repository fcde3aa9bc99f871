"""The inventory stage's error, light to import (the CLI catches it before numpy loads)."""

from __future__ import annotations


class ZonesError(ValueError):
    """A zones file cannot be used. str() is one line: '<path>: <problem>'."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
