"""The capture stage's error, light to import (the CLI catches it before numpy loads)."""

from __future__ import annotations


class CaptureError(Exception):
    """A capture cannot be read. str() is one line: '<path>: <problem>'."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
