"""Runs the per-protocol identity decoders over the rows of a batch whose operations can carry
identity (each module's `candidates(ops)`), DHCP's over its DHCP packets and HTTP's over segments
starting a response, giving the batch's IDENTITY frame."""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import (
    identity_bacnet,
    identity_cip,
    identity_dhcp,
    identity_dnp3,
    identity_http,
    identity_modbus,
    identity_opcua,
    identity_profinet,
    identity_s7,
)
from plantwatch.core.decode.identity import IDENTITY, empty, records_frame
from plantwatch.core.decode.view import PacketView

MODULES = (identity_s7, identity_modbus, identity_cip, identity_bacnet, identity_profinet, identity_opcua,
           identity_dnp3)


def _certificates(packets: pl.DataFrame) -> pl.DataFrame:
    """The leaf certificate a TLS peer sent (tls_cert.py decoded it), stated by its sender: a
    server's, or a client's in mutual TLS. TLS 1.3 encrypts certificates: only TLS 1.2 and
    earlier show them. Vectorised: a busy network sends many."""
    c = packets.filter(pl.col("cert_subject").is_not_null())
    if c.height == 0:
        return empty()
    base = [pl.col("file_id"), pl.col("frame"), pl.col("ts"), pl.col("src_hi").alias("hi"),
            pl.col("src_lo").alias("lo"), pl.lit("").alias("component")]
    parts = [c.select(*base, pl.lit(attr).alias("attribute"), pl.col(col).alias("value"), pl.lit("tls").alias("source"))
             for attr, col in (("tls_certificate", "cert_subject"), ("tls_certificate_issuer", "cert_issuer"))]
    return pl.concat(parts).filter(pl.col("value").is_not_null() & (pl.col("value") != "")).cast(IDENTITY)


def extract(view: PacketView, ops: pl.DataFrame, packets: pl.DataFrame, file_id: np.ndarray,
            frame: np.ndarray, states: dict[str, dict]) -> pl.DataFrame:
    """`ops` carries the batch row of each operation (`row`), retransmitted rows already
    removed; `packets` is the batch's PACKETS frame (DHCP and TLS identity are per packet)."""
    rows: list[int] = []
    recs: list[tuple] = []
    dhcp = identity_dhcp.candidate_rows(packets["app"].to_numpy())
    if dhcp.size:
        for r, rec in identity_dhcp.extract(view, [int(x) for x in dhcp], {}):
            rows.append(r)
            recs.append(rec)
    for r, rec in identity_http.extract(view, identity_http.candidate_rows(view).tolist(), {}):
        rows.append(r)
        recs.append(rec)
    for mod in MODULES:
        cand = mod.candidates(ops) if ops.height else pl.Series("row", [], dtype=pl.Int64)
        state = states.setdefault(mod.__name__, {})
        if cand.len() == 0 and not state.get("pending"):  # a message continued from a batch before
            continue
        for r, rec in mod.extract(view, sorted(int(x) for x in cand.to_list()), state):
            rows.append(r)
            recs.append(rec)
    certs = _certificates(packets)
    if not rows:
        return certs
    found = records_frame(view, rows, recs, file_id, frame, view.ts)
    return pl.concat([found, certs]) if certs.height else found
