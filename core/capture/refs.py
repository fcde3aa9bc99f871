"""Packet references: which packet of which capture, packed into one 64-bit integer.

A reference is `capture_id << 32 | frame` (frame numbers are 1-based, as in Wireshark). Inside a
run the high half is the run-local file id until the pipeline swaps it for the capture's id in the
store; from then on, and in everything stored (`sessions.ev_*`, `breaches.refs`), it is the
capture id. Every place that packs or unpacks one goes through this module: `PacketRef` for one
reference, `pack_refs` for numpy arrays and `ref_expr`/`ref_capture_expr`/`ref_frame_expr` for
polars columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

_SHIFT = 32
_FRAME_MASK = (1 << _SHIFT) - 1


@dataclass(frozen=True, slots=True, order=True)
class PacketRef:
    """One packet: its capture (id in the store, or run-local file id) and frame number."""

    capture_id: int
    frame: int

    def __post_init__(self) -> None:
        if not (0 <= self.capture_id < 1 << 31) or not (0 <= self.frame <= _FRAME_MASK):
            raise ValueError(f"not a packet reference: capture {self.capture_id}, frame {self.frame}")

    def pack(self) -> int:
        return (self.capture_id << _SHIFT) | self.frame

    @classmethod
    def unpack(cls, ref: int) -> PacketRef:
        ref = int(ref)
        return cls(ref >> _SHIFT, ref & _FRAME_MASK)


def pack_refs(capture_id: np.ndarray | int, frame: np.ndarray | int) -> np.ndarray:
    """Vectorised `PacketRef(c, f).pack()` (int64)."""
    return (np.asarray(capture_id, dtype=np.int64) << _SHIFT) | np.asarray(frame, dtype=np.int64)


def unpack_refs(refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised `PacketRef.unpack`: (capture ids, frames)."""
    r = np.asarray(refs, dtype=np.int64)
    return r >> _SHIFT, r & _FRAME_MASK


def ref_expr(capture_col: str, frame_col: str) -> pl.Expr:
    """The packed reference of two polars columns (Int64)."""
    return pl.col(capture_col).cast(pl.Int64) * (1 << _SHIFT) + pl.col(frame_col).cast(pl.Int64)


def ref_capture_expr(ref_col: str) -> pl.Expr:
    return pl.col(ref_col) // (1 << _SHIFT)


def ref_frame_expr(ref_col: str) -> pl.Expr:
    return pl.col(ref_col) % (1 << _SHIFT)


SQL_PACK = "{capture} * 4294967296 + {frame}"  # the same packing in SQL (format with column names)


__all__ = ["PacketRef", "pack_refs", "unpack_refs", "ref_expr", "ref_capture_expr", "ref_frame_expr",
           "SQL_PACK"]
