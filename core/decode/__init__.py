"""Batch decoding: raw records in, the PACKETS and OPS frames of core.decode.schema out.

The link, network and transport layers are decoded for all records at once (layers.py); ICS
PDUs cut across TCP segments are reassembled onto the segment completing them (reassembly.py);
then each application module picks its rows (select) and decodes them (decode). Application columns
come back sparse (a `row` index plus values) and are scattered into full-length columns here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import polars as pl

from plantwatch.core.capture.batch import LINKTYPE_ETHERNET, RawBatch
from plantwatch.core.decode import (
    ads,
    bacnet,
    c37118,
    dhcp,
    dnp3,
    dns,
    enip,
    fins,
    goose,
    hartip,
    identity_decoders,
    iec104,
    melsec,
    mms,
    modbus,
    nbns,
    opcua,
    profinet,
    rdp,
    s7,
    tls,
)
from plantwatch.core.decode.identity import empty as empty_identity
from plantwatch.core.decode.layers import Layers, decode_layers
from plantwatch.core.decode.reassembly import Reassembler
from plantwatch.core.decode.retrans import Retransmissions
from plantwatch.core.decode.schema import APP_ARP, OPS, PACKETS, empty_ops
from plantwatch.core.decode.view import PacketView

# Order matters only where two modules claim the same row and column: earlier wins, except
# `app`, where a later module's label wins (mms after s7: s7.py labels all of TCP 102).
APP_MODULES: tuple[ModuleType, ...] = (
    modbus, s7, dnp3, enip, iec104, bacnet, opcua, rdp, tls, dns, dhcp, nbns,
    fins, ads, melsec, hartip, c37118,
    mms, goose, profinet,  # IEC 61850 and PROFINET
)


@dataclass(frozen=True, slots=True)
class Decoded:
    packets: pl.DataFrame  # schema.PACKETS, one row per record
    ops: pl.DataFrame      # schema.OPS, one row per ICS operation
    identity: pl.DataFrame = field(default_factory=empty_identity)  # identity.IDENTITY, sparse


_NUMPY = {pl.Int8: np.int8, pl.Int16: np.int16, pl.Int32: np.int32, pl.Int64: np.int64,
          pl.UInt8: np.uint8, pl.UInt16: np.uint16, pl.UInt32: np.uint32, pl.UInt64: np.uint64,
          pl.Boolean: np.bool_}


def _layer_frame(columns: list[tuple]) -> pl.DataFrame:
    """The (name, values[, valid]) columns as PACKETS types, null where not valid: values cast
    by numpy (header fields fit their types), the nulls set in one polars pass."""
    frame = pl.DataFrame({c[0]: c[1].astype(_NUMPY[type(PACKETS[c[0]])], copy=False) for c in columns})
    return frame.with_columns([pl.when(pl.Series(c[2])).then(pl.col(c[0])).alias(c[0])
                               for c in columns if len(c) > 2 and not c[2].all()])


def _nulls(name: str, n: int) -> pl.Series:
    return pl.repeat(None, n, dtype=PACKETS[name], eager=True).alias(name)


def _layer_columns(batch: RawBatch, lay: Layers) -> dict[str, pl.Series]:
    ip = lay.ip_ver > 0
    start = lay.start
    cols = [
        ("file_id", batch.file_id), ("frame", batch.frame), ("ts", batch.ts),
        ("caplen", batch.caplen), ("wirelen", batch.wirelen), ("linktype", batch.linktype),
        ("eth_src", lay.eth_src, lay.has_eth), ("eth_dst", lay.eth_dst, lay.has_eth & (batch.linktype == LINKTYPE_ETHERNET)),
        ("ethertype", lay.ethertype, lay.has_ethertype),
        ("vlan", lay.vlan, lay.vlan >= 0), ("vlan_inner", lay.vlan_inner, lay.vlan_inner >= 0),
        ("ip_ver", lay.ip_ver),
        ("src_hi", lay.src_hi, ip), ("src_lo", lay.src_lo, ip),
        ("dst_hi", lay.dst_hi, ip), ("dst_lo", lay.dst_lo, ip),
        ("ip_proto", lay.ip_proto, ip), ("ttl", lay.ttl, ip), ("ip_frag", lay.ip_frag, ip),
        ("sport", lay.sport, lay.has_ports), ("dport", lay.dport, lay.has_ports),
        ("tcp_flags", lay.tcp_flags, lay.is_tcp), ("seq", lay.seq, lay.is_tcp),
        ("ack", lay.ack, lay.is_tcp), ("win", lay.win, lay.is_tcp),
        ("pay_off", lay.pay - start, lay.has_ports), ("pay_len", lay.pay_len, lay.has_ports),
        ("icmp_type", lay.icmp_type, lay.has_icmp), ("icmp_code", lay.icmp_code, lay.has_icmp),
        ("q_proto", lay.q_proto, lay.has_quote),
        ("q_src_hi", lay.q_src_hi, lay.has_quote), ("q_src_lo", lay.q_src_lo, lay.has_quote),
        ("q_dst_hi", lay.q_dst_hi, lay.has_quote), ("q_dst_lo", lay.q_dst_lo, lay.has_quote),
        ("q_sport", lay.q_sport, lay.has_quote & (lay.q_sport >= 0)),
        ("q_dport", lay.q_dport, lay.has_quote & (lay.q_dport >= 0)),
        ("arp_op", lay.arp_op, lay.is_arp), ("arp_sha", lay.arp_sha, lay.is_arp),
        ("arp_spa", lay.arp_spa, lay.is_arp), ("arp_tpa", lay.arp_tpa, lay.is_arp),
        ("app", np.where(lay.is_arp, APP_ARP, 0)),
    ]
    return {s.name: s for s in _layer_frame(cols)}


def _view(batch: RawBatch, lay: Layers) -> PacketView:
    return PacketView(
        data=batch.data, start=lay.start, end=lay.end, pay=lay.pay, pay_len=lay.pay_len,
        ip_proto=lay.ip_proto, sport=lay.sport, dport=lay.dport, tcp_flags=lay.tcp_flags,
        seq=lay.seq, src_hi=lay.src_hi, src_lo=lay.src_lo, dst_hi=lay.dst_hi, dst_lo=lay.dst_lo,
        ts=batch.ts.astype(np.int64),
        ethertype=np.where(lay.has_ethertype, lay.ethertype, 0), l3=lay.l3, eth_src=lay.eth_src,
    )


@dataclass
class Decoder:
    """Decodes batches; keeps the small per-module state some decoders need across batches."""

    modules: tuple[ModuleType, ...] = APP_MODULES
    _state: dict[str, dict] = field(default_factory=dict)
    _retrans: Retransmissions = field(default_factory=Retransmissions)
    _reassembly: Reassembler = field(default_factory=Reassembler)
    _identity_state: dict[str, dict] = field(default_factory=dict)

    def decode(self, batch: RawBatch) -> Decoded:
        n = len(batch)
        lay = decode_layers(batch)
        cols = _layer_columns(batch, lay)
        repeated = self._retrans.mark(lay, batch.ts)
        view = self._reassembly.apply(_view(batch, lay), repeated)  # ICS PDUs spanning TCP segments
        op_frames: list[pl.DataFrame] = []
        for mod in self.modules:
            state = self._state.setdefault(mod.__name__, {})
            rows = mod.select(view, state)
            if rows.size == 0:
                continue
            res = mod.decode(view, rows, state)
            if res.columns is not None and res.columns.height:
                _scatter(cols, res.columns, n)
            if res.ops is not None and res.ops.height:
                op_frames.append(res.ops)
        if repeated.any():
            op_frames = [f.filter(~pl.Series(repeated[f["row"].to_numpy()])) for f in op_frames]
        packets = pl.DataFrame([cols[name] if name in cols else _nulls(name, n) for name in PACKETS])
        ops = _ops_frame(batch, op_frames)
        identity = identity_decoders.extract(view, ops, packets, batch.file_id, batch.frame, self._identity_state)
        return Decoded(packets=packets, ops=ops.drop("row"), identity=identity)


    def notes(self) -> list[str]:
        """What decoders left out under their memory caps since the last call, one line each
        (modules with a `notes(state)` function: dns)."""
        out: list[str] = []
        for mod in self.modules:
            notes = getattr(mod, "notes", None)
            if notes is not None and mod.__name__ in self._state:
                out += notes(self._state[mod.__name__])
        return out


def _scatter(cols: dict[str, pl.Series], part: pl.DataFrame, n: int) -> None:
    """Write the non-null values of a sparse column frame into the full-length columns."""
    rows = part["row"].to_numpy()
    for name in part.columns:
        if name == "row":
            continue
        dtype = PACKETS[name]
        vals = part[name].cast(dtype)
        keep = vals.is_not_null().to_numpy()
        if not keep.any():
            continue
        if name == "app":
            keep &= vals.to_numpy() != 0
        base = cols.get(name)
        if base is None:
            base = _nulls(name, n)
        elif name != "app":
            # earlier modules win: only fill rows that are still null
            keep &= base.gather(rows).is_null().to_numpy()
        if keep.any():
            base = base.scatter(rows[keep], vals.filter(pl.Series(keep)))
        cols[name] = base


def _ops_frame(batch: RawBatch, frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The OPS frame plus each operation's batch `row`."""
    if not frames:
        return empty_ops().with_columns(pl.lit(None, pl.Int64).alias("row"))
    ops = pl.concat(frames, how="diagonal_relaxed").sort("row", maintain_order=True)
    rows = ops["row"].to_numpy()
    ops = ops.with_columns(
        pl.Series("file_id", batch.file_id[rows], dtype=pl.Int32),
        pl.Series("frame", batch.frame[rows], dtype=pl.Int64),
    )
    return ops.select(
        [pl.col(c).cast(dt) if c in ops.columns else pl.lit(None, dtype=dt).alias(c)
         for c, dt in OPS.items()] + [pl.col("row")]
    )
