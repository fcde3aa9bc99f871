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


def _certificates(packets: pl.DataFrame) -> tuple[list[int], list[tuple]]:
    """The leaf certificate a TLS peer sent (tls_cert.py decoded it), stated by its sender: a
    server's, or a client's in mutual TLS. TLS 1.3 encrypts certificates: only TLS 1.2 and
    earlier show them."""
    certs = packets.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), "cert_subject",
                           "cert_issuer").filter(pl.col("cert_subject").is_not_null())
    rows: list[int] = []
    recs: list[tuple] = []
    for r, subject, issuer in certs.iter_rows():
        rows.append(r)
        recs.append(("", "tls_certificate", subject, "tls"))
        if issuer:
            rows.append(r)
            recs.append(("", "tls_certificate_issuer", issuer, "tls"))
    return rows, recs


def extract(view: PacketView, ops: pl.DataFrame, packets: pl.DataFrame, file_id: np.ndarray,
            frame: np.ndarray, states: dict[str, dict]) -> pl.DataFrame:
    """`ops` carries the batch row of each operation (`row`), retransmitted rows already
    removed; `packets` is the batch's PACKETS frame (DHCP and TLS identity are per packet)."""
    rows, recs = _certificates(packets)
    dhcp = identity_dhcp.candidate_rows(packets["app"].to_numpy())
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
