"""Runs the per-protocol identity decoders over the rows of a batch whose operations can carry
identity (each module's `candidates(ops)`), and DHCP's over its DHCP packets, giving the batch's
IDENTITY frame."""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import (
    identity_bacnet,
    identity_cip,
    identity_dhcp,
    identity_modbus,
    identity_profinet,
    identity_s7,
)
from plantwatch.core.decode.identity import empty, records_frame
from plantwatch.core.decode.view import PacketView

MODULES = (identity_s7, identity_modbus, identity_cip, identity_bacnet, identity_profinet)


def extract(view: PacketView, ops: pl.DataFrame, app: np.ndarray, file_id: np.ndarray,
            frame: np.ndarray, states: dict[str, dict]) -> pl.DataFrame:
    """`ops` carries the batch row of each operation (`row`), retransmitted rows already
    removed; `app` is the batch's per-packet application label (for identity outside ICS PDUs)."""
    rows: list[int] = []
    recs: list[tuple] = []
    dhcp = identity_dhcp.candidate_rows(app)
    if dhcp.size:
        for r, rec in identity_dhcp.extract(view, [int(x) for x in dhcp], {}):
            rows.append(r)
            recs.append(rec)
    for mod in MODULES if ops.height else ():
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
