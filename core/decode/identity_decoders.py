"""Runs the per-protocol identity decoders over the rows of a batch whose operations can carry
identity (each module's `candidates(ops)`), giving the batch's IDENTITY frame."""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import (
    identity_bacnet,
    identity_cip,
    identity_modbus,
    identity_profinet,
    identity_s7,
)
from plantwatch.core.decode.identity import empty, records_frame
from plantwatch.core.decode.view import PacketView

MODULES = (identity_s7, identity_modbus, identity_cip, identity_bacnet, identity_profinet)


def extract(view: PacketView, ops: pl.DataFrame, file_id: np.ndarray, frame: np.ndarray,
            states: dict[str, dict]) -> pl.DataFrame:
    """`ops` carries the batch row of each operation (`row`); retransmitted rows already removed."""
    if ops.height == 0:
        return empty()
    rows: list[int] = []
    recs: list[tuple] = []
    for mod in MODULES:
        cand = mod.candidates(ops)
        if cand.len() == 0:
            continue
        state = states.setdefault(mod.__name__, {})
        for r, rec in mod.extract(view, sorted(int(x) for x in cand.to_list()), state):
            rows.append(r)
            recs.append(rec)
    if not rows:
        return empty()
    return records_frame(view, rows, recs, file_id, frame, view.ts)
