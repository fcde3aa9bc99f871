"""The application decoder's contract (see plantwatch.core.decode.view for what the two calls see).

An application decoder is a module with `select` and `decode`; the Decoder runs every module of
plantwatch.core.decode.APP_MODULES over each batch. `AppDecoder` states that shape as a type, so
a checker (and tests/test_contracts.py) can hold every decoder module to it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from plantwatch.core.decode.view import AppResult, PacketView


@runtime_checkable
class AppDecoder(Protocol):
    def select(self, view: PacketView, state: dict) -> np.ndarray:
        """Batch rows the decoder wants (vectorised; int64 indices)."""
        ...

    def decode(self, view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
        """Per-packet columns and, for ICS protocols, operation rows of `rows`."""
        ...


__all__ = ["AppDecoder"]
