"""TLS handshake decoder: ClientHello (version, SNI, JA3), ServerHello, the server's leaf certificate.

Selection: TCP segments whose payload starts with a handshake record header (16 03 00..04), on any
port, plus the continuation segments of the few flows whose handshake is still incomplete (those
flows are remembered in `state`). A handshake message is reported on the frame where it completes,
as tshark does after TCP reassembly: a certificate chain that spans three segments is reported on
the third. TLS 1.3 encrypts the certificate, so there is nothing to report for it.

Reassembly is per direction (src, dst, sport, dport), ordered by TCP sequence number, bounded in
bytes per flow and in flows; a flow is forgotten as soon as its bytes end on a record boundary with
no partial handshake message pending.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import OrderedDict

import numpy as np
import polars as pl

from plantwatch.core.decode.schema import APP_TLS, PACKETS
from plantwatch.core.decode.tls_cert import cert_cached, leaf_der
from plantwatch.core.decode.view import AppResult, PacketView, proto_rows

MAX_FLOW_BYTES = 64 * 1024      # pending bytes kept per flow direction
MAX_FLOWS = 256                 # flow directions with a pending handshake
FLOW_IDLE_NS = 120 * 10**9      # a pending flow idle this long (packet time) is dropped
MAX_OOO_SEGMENTS = 16           # out-of-order segments kept per flow

# Handshake types a cleartext message may have; anything else is taken as encrypted (as tshark does).
_HS_TYPES = frozenset({0, 1, 2, 3, 4, 5, 6, 8, 11, 12, 13, 14, 15, 16, 17, 20, 21, 22, 23, 24, 25,
                       254})
_U32 = 1 << 32

_COLUMNS = ("tls_hs", "tls_version", "tls_sni", "tls_ja3", "tls_ja3_hash", "cert_subject",
            "cert_issuer", "cert_self_signed")
_SCHEMA = {"row": pl.Int64(), "app": pl.UInt8(), **{c: PACKETS[c] for c in _COLUMNS}}

_K = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
               0xFF51AFD7ED558CCD], dtype=np.uint64)


def _flow_hash(view: PacketView, rows: np.ndarray) -> np.ndarray:
    """A uint64 hash of each row's directed flow (prefilter only; the dict key is exact)."""
    ports = ((view.sport[rows].astype(np.uint64) & np.uint64(0xFFFF)) << np.uint64(16)) | (
        view.dport[rows].astype(np.uint64) & np.uint64(0xFFFF))
    return (view.src_hi[rows] * _K[0] ^ view.src_lo[rows] * _K[1] ^ view.dst_hi[rows] * _K[2]
            ^ view.dst_lo[rows] * _K[3] ^ ports * _K[4])


def _flow_key(view: PacketView, r: int) -> tuple[int, int, int, int, int, int]:
    return (int(view.src_hi[r]), int(view.src_lo[r]), int(view.dst_hi[r]), int(view.dst_lo[r]),
            int(view.sport[r]), int(view.dport[r]))


def _flows(state: dict) -> OrderedDict:
    fl = state.get("flows")
    if fl is None:
        fl = state["flows"] = OrderedDict()
        state["hashes"] = {}
    return fl


def select(view: PacketView, state: dict) -> np.ndarray:
    """Segments starting with a handshake record, and the first segment in this batch of each flow
    still pending from an earlier batch; decode() follows a pending flow to its next segments."""
    cand = proto_rows(view, 6)[0]
    cand = cand[(view.pay_len[cand] >= 3) & (view.pay[cand] >= 0)]
    if cand.size == 0:
        return cand.astype(np.int64)
    d = view.data
    rows = cand[d[view.pay[cand]] == 0x16]   # the first byte alone leaves few rows to check
    p = view.pay[rows]
    rows = rows[(d[p + 1] == 0x03) & (d[p + 2] <= 0x04)]
    hashes = state.get("hashes")
    if hashes:
        allp = _tcp_rows(view)
        h = _flow_hash(view, allp)
        want = np.fromiter(hashes.values(), dtype=np.uint64, count=len(hashes))
        hit = np.isin(h, want)
        if hit.any():
            _, first = np.unique(h[hit], return_index=True)
            rows = np.union1d(rows, allp[hit][first])
    return rows.astype(np.int64)


def _tcp_rows(view: PacketView) -> np.ndarray:
    return np.flatnonzero((view.ip_proto == 6) & (view.pay_len > 0) & (view.pay >= 0))


class _NextRows:
    """Finds, lazily, the next segment of a directed flow later in the batch."""

    def __init__(self, view: PacketView) -> None:
        self.view = view
        self.hash: np.ndarray | None = None  # flow hash of every TCP segment, sorted
        self.rows: np.ndarray | None = None  # their rows, ascending within one hash

    def after(self, h: int, key: tuple, row: int) -> int | None:
        if self.hash is None:
            rows = _tcp_rows(self.view)
            hs = _flow_hash(self.view, rows)
            order = np.argsort(hs, kind="stable")
            self.hash, self.rows = hs[order], rows[order]
        lo = int(np.searchsorted(self.hash, np.uint64(h), side="left"))
        hi = int(np.searchsorted(self.hash, np.uint64(h), side="right"))
        fr = self.rows[lo:hi]
        for i in range(int(np.searchsorted(fr, row, side="right")), len(fr)):
            r = int(fr[i])
            if _flow_key(self.view, r) == key:  # not a hash collision
                return r
        return None


class _Flow:
    """The unconsumed bytes of one direction of a TLS stream."""

    __slots__ = ("next_seq", "buf", "hs", "ooo", "encrypted", "ts")

    def __init__(self, seq: int, ts: int) -> None:
        self.next_seq = seq
        self.buf = bytearray()   # bytes after the last complete record
        self.hs = bytearray()    # a handshake message split over records
        self.ooo: dict[int, bytes] = {}
        self.encrypted = False   # ChangeCipherSpec seen: later handshake records are ciphertext
        self.ts = ts

    def feed(self, seq: int, payload: bytes) -> bool:
        """Add a segment in sequence order; False for a segment that adds nothing new."""
        rel = (seq - self.next_seq) % _U32
        if rel >= _U32 // 2:  # starts before what we have: retransmission or overlap
            overlap = _U32 - rel
            if overlap >= len(payload):
                return False
            payload = payload[overlap:]
        elif rel > 0:         # a hole before it: keep it for later
            if len(self.ooo) < MAX_OOO_SEGMENTS:
                self.ooo[seq] = payload
            return False
        self.buf += payload
        self.next_seq = (self.next_seq + len(payload)) % _U32
        while self.ooo:
            nxt = self.ooo.pop(self.next_seq, None)
            if nxt is None:
                break
            self.buf += nxt
            self.next_seq = (self.next_seq + len(nxt)) % _U32
        return True

    def messages(self) -> tuple[list[tuple[int, bytes]], bool]:
        """(complete handshake messages now available, False when the stream is not TLS)."""
        out: list[tuple[int, bytes]] = []
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 5:
            ct, major, minor = buf[pos], buf[pos + 1], buf[pos + 2]
            ln = (buf[pos + 3] << 8) | buf[pos + 4]
            if not (20 <= ct <= 24) or major != 3 or minor > 4 or ln > 18432:
                return out, False
            if len(buf) - pos < 5 + ln:
                break
            rec = bytes(buf[pos + 5 : pos + 5 + ln])
            pos += 5 + ln
            if ct == 20:
                self.encrypted = True
            elif ct == 22 and not self.encrypted:
                self.hs += rec
                self._split(out)
        del buf[:pos]
        return out, True

    def _split(self, out: list[tuple[int, bytes]]) -> None:
        hs = self.hs
        pos = 0
        while len(hs) - pos >= 4:
            t = hs[pos]
            ln = (hs[pos + 1] << 16) | (hs[pos + 2] << 8) | hs[pos + 3]
            if t not in _HS_TYPES or ln > MAX_FLOW_BYTES:
                pos = len(hs)  # ciphertext (or garbage): drop it
                break
            if len(hs) - pos < 4 + ln:
                break
            out.append((t, bytes(hs[pos + 4 : pos + 4 + ln])))
            pos += 4 + ln
        del hs[:pos]

    def pending(self) -> bool:
        """True while a handshake record or message is incomplete."""
        if self.hs:
            return True
        if not self.buf:
            return False
        return self.buf[0] == 22 and not self.encrypted

    def size(self) -> int:
        return len(self.buf) + len(self.hs) + sum(len(v) for v in self.ooo.values())


def _restart(fl: _Flow, seq: int) -> bool:
    """A segment that starts a record, far from where the pending flow expects its next byte."""
    rel = (seq - fl.next_seq) % _U32
    return rel != 0 and rel < _U32 // 2 and rel > MAX_FLOW_BYTES


def _is_grease(v: int) -> bool:
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def _u16_list(b: bytes, start: int, end: int) -> list[int]:
    return [(b[i] << 8) | b[i + 1] for i in range(start, end - 1, 2)]


def _client_hello(msg: bytes) -> tuple[int | None, str | None, str | None]:
    """(legacy_version, SNI, JA3 string); parts that cannot be parsed are None."""
    n = len(msg)
    if n < 2:
        return None, None, None
    version = (msg[0] << 8) | msg[1]
    pos = 34
    if pos + 1 > n:
        return version, None, None
    pos += 1 + msg[pos]  # session id
    if pos + 2 > n:
        return version, None, None
    cs_len = (msg[pos] << 8) | msg[pos + 1]
    pos += 2
    if pos + cs_len > n:
        return version, None, None
    ciphers = [c for c in _u16_list(msg, pos, pos + cs_len) if not _is_grease(c)]
    pos += cs_len
    if pos + 1 > n:
        return version, None, None
    pos += 1 + msg[pos]  # compression methods
    if pos > n:
        return version, None, None
    exts: list[int] = []
    groups: list[int] = []
    formats: list[int] = []
    sni: str | None = None
    if pos + 2 <= n:
        end = min(n, pos + 2 + ((msg[pos] << 8) | msg[pos + 1]))
        pos += 2
        while pos + 4 <= end:
            et = (msg[pos] << 8) | msg[pos + 1]
            el = (msg[pos + 2] << 8) | msg[pos + 3]
            body = pos + 4
            pos = body + el
            if pos > end:
                break
            if not _is_grease(et):
                exts.append(et)
            if et == 0 and sni is None:
                sni = _sni(msg, body, pos)
            elif et == 10 and el >= 2:
                gl = (msg[body] << 8) | msg[body + 1]
                groups = [g for g in _u16_list(msg, body + 2, min(pos, body + 2 + gl))
                          if not _is_grease(g)]
            elif et == 11 and el >= 1:
                formats = list(msg[body + 1 : min(pos, body + 1 + msg[body])])
    ja3 = ",".join([str(version), "-".join(map(str, ciphers)), "-".join(map(str, exts)),
                    "-".join(map(str, groups)), "-".join(map(str, formats))])
    return version, sni, ja3


def _sni(msg: bytes, start: int, end: int) -> str | None:
    """The first host_name of a server_name extension body."""
    if start + 2 > end:
        return None
    pos = start + 2
    while pos + 3 <= end:
        nt = msg[pos]
        ln = (msg[pos + 1] << 8) | msg[pos + 2]
        if pos + 3 + ln > end:
            return None
        if nt == 0:
            # tshark reads it as ASCII: every byte above 0x7f becomes U+FFFD.
            return msg[pos + 3 : pos + 3 + ln].decode("ascii", errors="replace")
        pos += 3 + ln
    return None


def _forget(flows: OrderedDict, hashes: dict, key: tuple) -> None:
    flows.pop(key, None)
    hashes.pop(key, None)


def _hello_cached(msg: bytes, state: dict) -> tuple[int | None, str | None, str | None, str | None]:
    """_client_hello and the JA3 hash, remembered: a network's clients send the same few hellos,
    which differ only in their random and session id (never read past the session id's length)."""
    key = msg[:2] + msg[35 + msg[34] :] if len(msg) >= 35 else msg[:2]
    cache: dict = state.setdefault("hellos", {})
    hit = cache.get(key)
    if hit is None:
        version, sni, ja3 = _client_hello(msg)
        ja3_hash = None if ja3 is None else hashlib.md5(ja3.encode(), usedforsecurity=False).hexdigest()
        hit = (version, sni, ja3, ja3_hash)
        if len(key) <= _HELLO_KEY_MAX:
            if len(cache) >= _HELLO_CACHE:
                cache.clear()
            cache[key] = hit
    return hit


_HELLO_CACHE = 1024     # hellos remembered
_HELLO_KEY_MAX = 2048   # larger hellos are parsed every time


class _Segments:
    """(flow key, payload, sequence number, time) of a batch's rows, converted from numpy for the
    rows known up front all at once; rows found later (a pending flow's next segment) one by one."""

    def __init__(self, view: PacketView, rows: list[int]) -> None:
        self.view = view
        r = np.array(rows, dtype=np.int64)
        keys = zip(*(a[r].tolist() for a in (view.src_hi, view.src_lo, view.dst_hi, view.dst_lo,
                                              view.sport, view.dport)), strict=True)
        data = memoryview(view.data)
        pays = [bytes(data[p : p + n]) if p >= 0 else b""
                for p, n in zip(view.pay[r].tolist(), view.pay_len[r].tolist(), strict=True)]
        seqs = (view.seq[r] % _U32).tolist()
        self.known = dict(zip(rows, zip(keys, pays, seqs, view.ts[r].tolist(), strict=True), strict=True))

    def get(self, r: int) -> tuple[tuple, bytes, int, int]:
        hit = self.known.get(r)
        if hit is None:
            v = self.view
            hit = (_flow_key(v, r), v.payload(r), int(v.seq[r]) % _U32, int(v.ts[r]))
        return hit


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    flows = _flows(state)
    hashes: dict = state["hashes"]
    if len(rows) == 0:
        return AppResult(columns=pl.DataFrame(schema=_SCHEMA))
    rows = np.asarray(rows, dtype=np.int64)
    todo = sorted({int(r) for r in rows})
    queued = set(todo)
    segments = _Segments(view, todo)
    heapq.heapify(todo)
    nxt = _NextRows(view)
    found: list[tuple] = []
    while todo:
        r = heapq.heappop(todo)
        key, payload, seq, ts = segments.get(r)
        vals = _step(payload, seq, ts, key, flows, state)
        if key in flows:  # still pending: its next segment in this batch must be walked too
            h = int(_flow_hash(view, np.array([r], dtype=np.int64))[0])
            hashes[key] = h
            after = nxt.after(h, key, r)
            if after is not None and after not in queued:
                queued.add(after)
                heapq.heappush(todo, after)
        else:
            hashes.pop(key, None)
        if vals is not None:
            found.append((r, APP_TLS, *vals))
    _expire(flows, hashes, int(view.ts[rows].max()))
    columns = dict(zip(_SCHEMA, map(list, zip(*found, strict=True)), strict=True)) if found else None
    return AppResult(columns=pl.DataFrame(columns, schema=_SCHEMA))


def _step(payload: bytes, seq: int, ts: int, key: tuple, flows: OrderedDict,
          state: dict) -> tuple | None:
    """Feed one segment to its flow; the row's values of _COLUMNS, or None when it is not TLS."""
    if not payload:
        return None
    fl = flows.get(key)
    header = len(payload) >= 5 and payload[0] == 0x16 and payload[1] == 3 and payload[2] <= 4
    if fl is not None and header and _restart(fl, seq):
        fl = None
    if fl is None:
        if not header:
            return None
        fl = _Flow(seq, ts)
    fed = fl.feed(seq, payload)
    fl.ts = ts
    msgs, ok = fl.messages() if fed else ([], True)
    if not ok or not (fl.pending() or fl.ooo) or fl.size() > MAX_FLOW_BYTES:
        flows.pop(key, None)
    else:
        flows[key] = fl
        flows.move_to_end(key)
    if not fed or (not ok and not msgs):
        return None
    hs = version = sni = ja3 = ja3_hash = subj = iss = ss = None
    for t, msg in msgs:
        if hs is None:
            hs = t
        if t == 1 and ja3 is None:
            version, sni, ja3, ja3_hash = _hello_cached(msg, state)
        elif t == 2 and version is None and len(msg) >= 2:
            version = (msg[0] << 8) | msg[1]
        elif t == 11 and subj is None:
            der = leaf_der(msg)
            if der is not None:
                subj, iss, ss = cert_cached(der, state)
    return hs, version, sni, ja3, ja3_hash, subj, iss, ss


def _expire(flows: OrderedDict, hashes: dict, now: int) -> None:
    for key in [k for k, f in flows.items() if now - f.ts > FLOW_IDLE_NS]:
        _forget(flows, hashes, key)
    while len(flows) > MAX_FLOWS:
        key = next(iter(flows))
        _forget(flows, hashes, key)
