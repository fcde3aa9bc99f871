"""TCP retransmissions: segments that start inside bytes the flow already carried.

As in Wireshark's TCP analysis, a segment with payload whose sequence number lies below the
highest sequence end already seen in its flow direction is a retransmission (whole or partial),
and its application data is not dissected again: the packets still count in their session's
volumes, only the operations they carry are dropped, so a write is never counted twice.

Vectorised per batch: segments are grouped by flow direction (a 64-bit hash), sequence numbers
are unwrapped relative to the group's first one, and a running maximum per group gives the
highest end seen before each segment. The highest end of each flow direction is carried to the
next batch; directions idle for `idle_s` of packet time are forgotten.
"""

from __future__ import annotations

import numpy as np

from plantwatch.core.decode.addr import hash_u64
from plantwatch.core.decode.layers import Layers

_WRAP = 1 << 32
_GROUP = 1 << 40  # spacing between groups in the running maximum (unwrapped values stay < 2^33)


def _rel(seq: np.ndarray, base: np.ndarray) -> np.ndarray:
    """seq - base as a signed 32-bit distance (sequence numbers wrap)."""
    d = (seq - base) % _WRAP
    return np.where(d >= _WRAP // 2, d - _WRAP, d)


class Retransmissions:
    def __init__(self, idle_s: float = 600.0) -> None:
        self.idle_ns = int(idle_s * 1e9)
        self._keys = np.zeros(0, dtype=np.uint64)   # sorted flow-direction hashes
        self._end = np.zeros(0, dtype=np.int64)     # highest sequence end seen (absolute, 32-bit)
        self._last = np.zeros(0, dtype=np.int64)    # packet time of its last segment

    def mark(self, lay: Layers, ts: np.ndarray) -> np.ndarray:
        """A bool per record: a TCP segment starting inside data already seen."""
        out = np.zeros(lay.n, dtype=bool)
        rows = np.flatnonzero(lay.is_tcp & (lay.pay_len > 0))
        if rows.size == 0:
            return out
        key = hash_u64(lay.src_hi[rows], lay.src_lo[rows], lay.dst_hi[rows], lay.dst_lo[rows],
                       lay.sport[rows], lay.dport[rows])
        order = np.argsort(key, kind="stable")          # by flow direction, then packet order
        k, r = key[order], rows[order]
        seq = lay.seq[r].astype(np.int64)
        length = lay.pay_len[r].astype(np.int64)
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        group = np.cumsum(np.r_[True, k[1:] != k[:-1]]) - 1
        base = seq[starts][group]
        rel = _rel(seq, base)
        # the carried highest end of each group, relative to the group's base (none carried: -inf)
        carried = np.full(starts.size, np.iinfo(np.int64).min // 4, dtype=np.int64)
        if self._keys.size:
            j = np.minimum(np.searchsorted(self._keys, k[starts]), self._keys.size - 1)
            hit = self._keys[j] == k[starts]
            carried[hit] = _rel(self._end[j[hit]], seq[starts][hit])
        ends = rel + length + group * _GROUP
        run = np.maximum.accumulate(ends)
        prev = np.empty_like(run)
        prev[0] = np.iinfo(np.int64).min // 4
        prev[1:] = run[:-1]
        prev[starts] = np.iinfo(np.int64).min // 4     # no previous segment of this group here
        prev = np.maximum(prev, carried[group] + group * _GROUP)
        out[r] = (rel + group * _GROUP) < prev
        last_of = np.r_[starts[1:] - 1, k.size - 1]
        top = np.maximum(run[last_of] - group[last_of] * _GROUP, carried)
        self._carry(k[starts], (seq[starts] + top) % _WRAP, np.maximum.reduceat(ts[r], starts))
        return out

    def _carry(self, new_keys: np.ndarray, new_end: np.ndarray, new_last: np.ndarray) -> None:
        keys = np.concatenate([self._keys, new_keys])
        ends = np.concatenate([self._end, new_end])
        lasts = np.concatenate([self._last, new_last])
        order = np.argsort(keys, kind="stable")
        keys, ends, lasts = keys[order], ends[order], lasts[order]
        keep_last = np.r_[keys[1:] != keys[:-1], True]  # the newest row of each key wins
        keys, ends, lasts = keys[keep_last], ends[keep_last], lasts[keep_last]
        alive = lasts >= int(new_last.max()) - self.idle_ns
        self._keys, self._end, self._last = keys[alive], ends[alive], lasts[alive]
