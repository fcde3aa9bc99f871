"""TCP reassembly of ICS PDUs that span segments (Modbus/TCP, TPKT: S7comm and MMS, DNP3, IEC 104).

As tshark does (tcp_dissect_pdus): a PDU is reported on the segment that completes it, together
with the complete PDUs that follow in that segment; the segments before carry no PDU. Done once
per batch, before the application decoders, by handing them a PacketView in which

- a segment whose last PDU is cut keeps only its complete PDUs (payload trimmed, or empty);
- the segment that completes it carries the held bytes followed by its own (its payload points
  to a reassembled copy appended to the batch buffer).

Only the framing of each protocol is known here (the PDU length in its header). The common case,
a segment holding exactly whole PDUs, is found vectorised (the PDU chain is walked for all
candidate segments at once) and never touches Python; only segments of flow directions with a cut
PDU are walked per packet. Ordering follows core/decode/retrans.py: the next segment of a held
PDU must start at the expected sequence number; one that starts below it is a retransmission
(ignored here; its operations are dropped there), one that starts above it means bytes were lost,
and the held bytes are dropped. Memory is bounded: at most `max_flows` flow directions hold bytes
(the oldest are dropped first), each at most one PDU (<= 64 KiB by the length fields), and held
bytes idle for `idle_s` of packet time are dropped.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from plantwatch.core.decode.addr import hash_u64
from plantwatch.core.decode.layers import be16, window
from plantwatch.core.decode.view import PacketView

# framing kinds
_MODBUS, _TPKT, _DNP3, _IEC104 = 1, 2, 3, 4
PORT_FRAMING = {502: _MODBUS, 102: _TPKT, 20000: _DNP3, 2404: _IEC104}
_NEED = np.array([1, 6, 4, 3, 2], dtype=np.int64)  # header bytes that give the PDU length
# Bytes tshark's dissectors want in a segment before they claim it (their heuristics run on the
# segment's first bytes: mbtcp wants 8, is_tpkt 4, check_dnp3_header the 10-byte link header);
# with fewer, the PDU cut after them is never reassembled by tshark, nor here. A PDU cut after
# whole ones in the same segment is always held (tcp_dissect_pdus asks for more).
_MIN_FIRST = {_MODBUS: 8, _TPKT: 1, _DNP3: 1, _IEC104: 1}
_MIN_FIRST_ARR = np.array([0, 8, 1, 1, 1], dtype=np.int64)
_MAX_PDUS = 256  # per segment, a bound on the vectorised walk
_WRAP = 1 << 32


def _framed(k: int, m: np.ndarray) -> np.ndarray:
    """PDU length from the first 6 header bytes `m` of framing kind `k` (0: not a PDU header).

    The length fields' legal ranges are checked as the dissectors' heuristics do, so bytes that
    do not start a PDU (say mid-stream at the start of a capture) are never held."""
    b0, b1 = m[:, 0], m[:, 1].astype(np.int64)
    if k == _MODBUS:
        w4 = be16(m, 4)
        return np.where((be16(m, 2) == 0) & (w4 >= 2) & (w4 <= 254), 6 + w4, 0)
    if k == _TPKT:
        w2 = be16(m, 2)
        return np.where((b0 == 3) & (b1 == 0) & (w2 >= 7), w2, 0)
    if k == _DNP3:
        user = m[:, 2].astype(np.int64) - 5
        return np.where((b0 == 0x05) & (b1 == 0x64) & (user >= 0), 10 + user + 2 * ((user + 15) // 16), 0)
    return np.where((b0 == 0x68) & (b1 >= 4) & (b1 <= 253), 2 + b1, 0)


def _cut_header(k: int, m: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Fewer bytes than the length field needs, and those present could start a PDU."""
    b0, b1 = m[:, 0], m[:, 1]
    if k == _MODBUS:
        return (avail < 4) | (be16(m, 2) == 0)
    if k == _TPKT:
        return (b0 == 3) & ((avail < 2) | (b1 == 0))
    if k == _DNP3:
        return (b0 == 0x05) & ((avail < 2) | (b1 == 0x64))
    return b0 == 0x68


def _pdu_len(kind: np.ndarray, data: np.ndarray, pos: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Total length of the PDU starting at `pos` (0: not a PDU header; -1: header cut short)."""
    m = window(data, pos, 6)  # bytes past `end` are never used: see `avail`
    avail = end - pos
    need = _NEED[kind]
    out = np.zeros(pos.size, dtype=np.int64)
    full = avail >= need
    for k in (_MODBUS, _TPKT, _DNP3, _IEC104):
        i = np.flatnonzero((kind == k) & full)
        if i.size:
            out[i] = _framed(k, m[i])
        i = np.flatnonzero((kind == k) & ~full & (avail >= 1))
        if i.size:
            out[i] = np.where(_cut_header(k, m[i], avail[i]), -1, 0)
    return out


def _walk(kind: np.ndarray, data: np.ndarray, pos: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(end of the last complete PDU, a PDU is cut by the end) for every segment, vectorised."""
    cur = pos.copy()
    cut = np.zeros(pos.size, dtype=bool)
    active = np.flatnonzero(cur < end)
    for _ in range(_MAX_PDUS):
        if active.size == 0:
            break
        n = _pdu_len(kind[active], data, cur[active], end[active])
        fits = (n > 0) & (cur[active] + n <= end[active])
        cut[active] = (n < 0) | ((n > 0) & ~fits)
        cur[active[fits]] += n[fits]
        active = active[fits & (cur[active] < end[active])]
    return cur, cut


def _walk_bytes(kind: int, buf: bytes) -> tuple[int, bool]:
    """_walk for one byte string (the held bytes plus a segment)."""
    arr = np.frombuffer(buf + bytes(8), dtype=np.uint8)  # padded: the gathers read 2 bytes at 0
    done, cut = _walk(np.array([kind]), arr, np.zeros(1, np.int64), np.array([len(buf)], np.int64))
    return int(done[0]), bool(cut[0])


class Reassembler:
    """Holds the cut PDU of each flow direction across batches (see the module docstring)."""

    def __init__(self, max_flows: int = 4096, idle_s: float = 600.0) -> None:
        self.max_flows = max_flows
        self.idle_ns = int(idle_s * 1e9)
        # key -> (held bytes, next expected sequence number, packet time of the last segment)
        self._held: dict[int, tuple[bytes, int, int]] = {}

    def apply(self, view: PacketView, repeated: np.ndarray | None = None) -> PacketView:
        """The view the decoders should see; `repeated` marks TCP retransmissions (retrans.py),
        which neither complete nor start a held PDU."""
        table = _framing_table()
        cand = np.flatnonzero((view.ip_proto == 6) & (view.pay_len > 0))
        if cand.size == 0:
            return view
        kind = np.maximum(table[view.sport[cand]], table[view.dport[cand]])
        cand, kind = cand[kind > 0], kind[kind > 0]
        if cand.size == 0:
            return view
        pos, plen, end = view.span(cand)
        done, cut = _walk(kind, view.data, pos, end)
        cut &= (done > pos) | (plen >= _MIN_FIRST_ARR[kind])
        if not cut.any() and not self._held:
            return view
        keys = hash_u64(view.src_hi[cand], view.src_lo[cand], view.dst_hi[cand], view.dst_lo[cand],
                        view.sport[cand], view.dport[cand])
        involved = np.isin(keys, np.array(list(self._held), dtype=np.uint64)) | np.isin(keys, keys[cut])
        if not involved.any():
            return view
        pay, pay_len = view.pay.copy(), view.pay_len.copy()
        extra: list[bytes] = []
        base = view.data.size
        for i in np.flatnonzero(involved).tolist():
            r = int(cand[i])
            if repeated is not None and repeated[r]:
                continue
            out = self._segment(int(keys[i]), int(kind[i]), int(view.seq[r]), view.payload(r),
                                int(view.ts[r]))
            if out is None:
                continue
            if isinstance(out, int):  # keep the first `out` bytes of the payload
                pay_len[r] = out
            else:
                pay[r], pay_len[r] = base, len(out)
                base += len(out)
                extra.append(out)
        self._expire(int(view.ts[cand].max()))
        data = np.concatenate([view.data, np.frombuffer(b"".join(extra), dtype=np.uint8)]) if extra else view.data
        return dataclasses.replace(view, data=data, pay=pay, pay_len=pay_len)   # rows memo not copied

    def _segment(self, key: int, kind: int, seq: int, payload: bytes, ts: int) -> int | bytes | None:
        """What the decoders see of one segment: None (as captured), a length to trim the
        payload to, or the reassembled bytes."""
        held = self._held.get(key)
        if held is not None:
            buf, nxt, _ = held
            d = (seq - nxt) % _WRAP
            if d >= _WRAP // 2:
                return None  # starts below the expected byte: a retransmission
            if d == 0:
                data = buf + payload
                done, cut = _walk_bytes(kind, data)
                self._hold(key, data[done:] if cut else b"", seq + len(payload), ts)
                return data[:done]
            del self._held[key]  # bytes were lost: give the held PDU up
        done, cut = _walk_bytes(kind, payload)
        if not cut or (done == 0 and len(payload) < _MIN_FIRST[kind]):
            return None
        self._hold(key, payload[done:], seq + len(payload), ts)
        return done

    def _hold(self, key: int, buf: bytes, nxt: int, ts: int) -> None:
        self._held.pop(key, None)
        if not buf:
            return
        if len(self._held) >= self.max_flows:
            del self._held[next(iter(self._held))]  # the oldest held PDU
        self._held[key] = (buf, nxt % _WRAP, ts)

    def _expire(self, now: int) -> None:
        stale = [k for k, (_, _, t) in self._held.items() if t < now - self.idle_ns]
        for k in stale:
            del self._held[k]


_TABLE: np.ndarray | None = None


def _framing_table() -> np.ndarray:
    global _TABLE
    if _TABLE is None:
        t = np.zeros(65536, dtype=np.int64)
        for port, kind in PORT_FRAMING.items():
            t[port] = kind
        _TABLE = t
    return _TABLE
