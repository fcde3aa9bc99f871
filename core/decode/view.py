"""What the application decoders see of a batch, and the helpers they share.

Every application decoder module exposes two functions:

    def select(view: PacketView, state: dict) -> np.ndarray      # batch rows it wants (vectorised)
    def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult

`state` is a dict private to the module that lives as long as the Decoder (across batches and
files), for the few decoders that need memory (TLS reassembly of a certificate, say); keep it
bounded. `decode` returns per-packet columns and, for ICS protocols, operation rows; both carry a
`row` column (Int64, the batch index) and any subset of the columns of
core/decode/schema.PACKETS / OPS (without file_id/frame, which the dispatcher adds). A decoder
sets the `app` column (APP_*) on the rows it recognised; rows it cannot parse are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import polars as pl


@dataclass(frozen=True, slots=True)
class PacketView:
    data: np.ndarray     # uint8, the batch buffer (RawBatch.data)
    start: np.ndarray    # int64, absolute offset of each record in data
    end: np.ndarray      # int64, absolute end of each record's captured bytes
    pay: np.ndarray      # int64, absolute offset of the L4 payload in data (-1: none)
    pay_len: np.ndarray  # int64, payload bytes present in the capture (0: none)
    ip_proto: np.ndarray  # int64 (0 when not IP)
    sport: np.ndarray    # int64 (-1 when no ports)
    dport: np.ndarray    # int64
    tcp_flags: np.ndarray  # int64 (0 when not TCP)
    seq: np.ndarray      # int64 raw TCP sequence number (0 when not TCP)
    src_hi: np.ndarray   # uint64 address halves, as in schema.PACKETS
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    ts: np.ndarray       # int64 ns
    # link layer, for protocols carried on Ethernet directly (GOOSE, PROFINET); None in unit views
    ethertype: np.ndarray | None = None  # int64, after VLAN tags (0: none)
    l3: np.ndarray | None = None         # int64 absolute offset of the ethertype's payload (-1: none)
    eth_src: np.ndarray | None = None    # uint64
    # rows per IP protocol (proto_rows), found once for the view: every module's select asks
    _proto_rows: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_payloads(
        cls, payloads: list[bytes], *, proto: int = 6, sport: int = 50000, dport: int = 502,
        flags: int = 0x18,
    ) -> PacketView:
        """A view over bare L4 payloads (for unit tests of application decoders)."""
        n = len(payloads)
        lens = np.array([len(p) for p in payloads], dtype=np.int64)
        start = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
        data = np.frombuffer(b"".join(payloads), dtype=np.uint8) if n else np.zeros(0, np.uint8)
        full = lambda v: np.full(n, v, dtype=np.int64)  # noqa: E731
        zero64 = np.zeros(n, dtype=np.uint64)
        return cls(data=data, start=start, end=start + lens, pay=start.copy(), pay_len=lens,
                   ip_proto=full(proto), sport=full(sport), dport=full(dport), tcp_flags=full(flags),
                   seq=full(0), src_hi=zero64, src_lo=zero64 + 1, dst_hi=zero64, dst_lo=zero64 + 2,
                   ts=np.arange(n, dtype=np.int64))

    def span(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(payload start, payload length, payload end) of `rows`, absolute offsets in data."""
        pos = self.pay[rows]
        plen = self.pay_len[rows]
        return pos, plen, pos + plen

    def payload(self, row: int) -> bytes:
        """The captured L4 payload of one packet, for decoders that must walk bytes."""
        p = int(self.pay[row])
        if p < 0:
            return b""
        return self.data[p : p + int(self.pay_len[row])].tobytes()


@lru_cache(maxsize=64)
def _port_table(ports: frozenset[int]) -> np.ndarray:
    """A 65,536-entry lookup table: faster than np.isin for every batch."""
    table = np.zeros(65536, dtype=bool)
    table[np.fromiter(ports, dtype=np.int64)] = True
    return table


def proto_rows(view: PacketView, proto: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows of IP protocol `proto` with payload, their source ports, their destination ports)."""
    hit = view._proto_rows.get(proto)
    if hit is None:
        rows = np.flatnonzero((view.ip_proto == proto) & (view.pay_len > 0))
        hit = view._proto_rows[proto] = (rows, view.sport[rows], view.dport[rows])
    return hit


def port_rows(view: PacketView, proto: int, ports: frozenset[int] | set[int]) -> np.ndarray:
    """Rows of `proto` (6 TCP, 17 UDP) with payload whose source or destination port is in `ports`."""
    table = _port_table(frozenset(ports))
    cand, sport, dport = proto_rows(view, proto)
    return cand[table[sport] | table[dport]]


@dataclass(frozen=True, slots=True)
class AppResult:
    columns: pl.DataFrame | None = None  # `row` + PACKETS columns
    ops: pl.DataFrame | None = None      # `row` + OPS columns (one row per operation)


def gather_u8(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """data[pos] for every element, with a mask of those inside their record (pos < limit)."""
    ok = (pos >= 0) & (pos < limit)
    safe = np.where(ok, pos, 0)
    return data[safe].astype(np.int64), ok


def gather_be16(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = (pos >= 0) & (pos + 2 <= limit)
    safe = np.where(ok, pos, 0)
    v = (data[safe].astype(np.int64) << 8) | data[safe + 1]
    return v, ok


def gather_be32(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = (pos >= 0) & (pos + 4 <= limit)
    safe = np.where(ok, pos, 0)
    d = data
    v = ((d[safe].astype(np.int64) << 24) | (d[safe + 1].astype(np.int64) << 16)
         | (d[safe + 2].astype(np.int64) << 8) | d[safe + 3])
    return v, ok


def gather_le16(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = (pos >= 0) & (pos + 2 <= limit)
    safe = np.where(ok, pos, 0)
    v = data[safe].astype(np.int64) | (data[safe + 1].astype(np.int64) << 8)
    return v, ok


def gather_le32(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = (pos >= 0) & (pos + 4 <= limit)
    safe = np.where(ok, pos, 0)
    d = data
    v = (d[safe].astype(np.int64) | (d[safe + 1].astype(np.int64) << 8)
         | (d[safe + 2].astype(np.int64) << 16) | (d[safe + 3].astype(np.int64) << 24))
    return v, ok
