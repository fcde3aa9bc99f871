"""The packets of one session cut out of its capture into a small pcapng, for the packet view.

Asking tshark for frame N of a whole capture makes it dissect every frame before N (13-20 s on
the demo's incident capture). Instead the native reader walks the capture's records (no
dissection; batches outside the session's frame span are not even decoded; an uncompressed
pcapng is entered at the last block offset known before the session, capture/record_index.py),
keeps the session's packets, and writes them to a temporary pcapng that tshark dissects in a
fraction of a second.
The cut also gives the hex of every packet and the session's ICS operations packet by packet
(the "follow" list) from plantwatch's own decoders, with the original frame numbers.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from plantwatch.core.capture.batch import RawBatch
from plantwatch.core.capture.errors import CaptureError
from plantwatch.core.capture.files import read_batches
from plantwatch.core.capture.pcapng_out import CommentedPcapng
from plantwatch.core.capture.record_index import batches_from
from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.decode import Decoder
from plantwatch.core.decode.layers import decode_layers
from plantwatch.core.decode.schema import CLASS_NAMES, DIR_REQUEST, DIR_RESPONSE
from plantwatch.core.store.database import Store
from plantwatch.core.views.session_match import capture_paths, session_keys, session_rows

MAX_PACKETS = 5000          # a longer session is cut to the packets around the one asked for
_made: set[str] = set()     # cut files not removed yet: removed at exit at the latest


@atexit.register
def _remove_left() -> None:
    for name in list(_made):
        with contextlib.suppress(OSError):
            os.unlink(name)
    _made.clear()


class CutError(Exception):
    """The packets cannot be cut out; str() is one sentence naming the capture and the problem."""


@dataclass(frozen=True, slots=True)
class CutPacket:
    capture_id: int
    frame: int                  # in the original capture (tshark's frame.number there)
    ts: int                     # ns, packet time
    linktype: int
    wirelen: int
    data: bytes                 # the captured bytes (from the wire: untrusted)
    payload: int                # L4 payload bytes

    @property
    def ref(self) -> PacketRef:
        return PacketRef(self.capture_id, self.frame)


@dataclass(frozen=True, slots=True)
class CutOp:
    """One ICS operation PDU of the session, as plantwatch decoded it."""

    frame: int
    direction: str              # request | response | other
    name: str
    cls: str                    # READ / DISCOVER / ACTION / REPROGRAM, or ""
    app: int


@dataclass(frozen=True, slots=True)
class SessionCut:
    session_id: int | None      # None: a lone packet whose session is not known
    source: str                 # the capture file the packets came from
    packets: tuple[CutPacket, ...]
    ops: tuple[CutOp, ...]
    pcap: str                   # the temporary pcapng holding `packets` in order (caller removes it)
    truncated: bool = False     # the session had more packets than MAX_PACKETS

    def index_of(self, ref: PacketRef) -> int | None:
        for i, p in enumerate(self.packets):
            if p.capture_id == ref.capture_id and p.frame == ref.frame:
                return i
        return None

    def first_data(self) -> int:
        """The packet that shows what the session did: its first ICS operation, else its first
        packet with application payload, else its first packet."""
        if self.ops:
            i = self.index_of(PacketRef(self.packets[0].capture_id, self.ops[0].frame)) \
                if self.packets else None
            if i is not None:
                return i
        return next((i for i, p in enumerate(self.packets) if p.payload > 0), 0)

    def remove(self) -> None:
        _made.discard(self.pcap)
        with contextlib.suppress(OSError):
            os.unlink(self.pcap)


def _locate(store: Store, capture_id: int, search: tuple[Path, ...]) -> Path:
    path = capture_paths(store, search).get(capture_id)
    if path is None:
        r = store.execute("SELECT path FROM captures WHERE capture_id = ?", (capture_id,)).fetchone()
        if r is None:
            raise CutError(f"capture {capture_id} is not in the store")
        raise CutError(f"the capture file {r[0]} is gone (moved or deleted), so its packets cannot be "
                       "decoded (plantwatch relocate points the store at its new folder)")
    return path


def _batches(path: Path, lo: int, hi: int):
    """The batches of `path` that hold frames lo..hi (the reader stops after hi)."""
    try:
        for batch in batches_from(path, lo):
            fr = batch.frame
            if int(fr[-1]) < lo:
                continue
            if int(fr[0]) > hi:
                return
            yield batch
    except CaptureError as e:
        raise CutError(str(e)) from None


def _take(batch: RawBatch, rows: np.ndarray, capture_id: int, pay_len: np.ndarray) -> list[CutPacket]:
    out = []
    for i in rows:
        o = int(batch.offset[i])
        out.append(CutPacket(capture_id, int(batch.frame[i]), int(batch.ts[i]), int(batch.linktype[i]),
                             int(batch.wirelen[i]), batch.data[o:o + int(batch.caplen[i])].tobytes(),
                             max(int(pay_len[i]), 0)))
    return out


def cut_session(store: Store, session_id: int, around: PacketRef | None = None,
                search: tuple[Path, ...] = ()) -> SessionCut:
    """The packets of session `session_id` from its capture (the one holding `around` when the
    session spans several), written to a temporary pcapng."""
    sess = session_rows(store, [session_id])
    if sess.height == 0:
        raise CutError(f"session {session_id} is not in the store")
    r = sess.row(0, named=True)
    cid = around.capture_id if around is not None else int(r["first_file"])
    path = _locate(store, cid, search)
    lo = int(r["first_frame"]) if cid == r["first_file"] else 1
    hi = int(r["last_frame"]) if cid == r["last_file"] else 1 << 62
    at = around.frame if around is not None else lo
    # a window of the session around `at`: at most MAX_PACKETS // 2 packets before it (the
    # oldest fall off), then packets from `at` on until MAX_PACKETS are kept; reading stops there
    before: deque[CutPacket] = deque(maxlen=MAX_PACKETS // 2)
    after: list[CutPacket] = []
    dropped = stopped = False
    for batch in _batches(path, lo, hi):
        lay = decode_layers(batch)
        m = session_keys(lay, batch.frame, batch.ts, cid, sess)
        rows = np.sort(m["row"].to_numpy())
        for p in _take(batch, rows, cid, lay.pay_len):
            if p.frame < at:
                dropped = dropped or len(before) == before.maxlen
                before.append(p)
            else:
                after.append(p)
        if len(before) + len(after) >= MAX_PACKETS and after:
            stopped = True
            break
    packets = list(before) + after
    truncated = dropped or stopped or len(packets) > MAX_PACKETS
    packets = packets[:MAX_PACKETS]
    if not packets:
        raise CutError(f"{path}: no packet of session {session_id} found in frames {lo}..{hi} "
                       "(the file is not the capture that was analysed)")
    return _finish(session_id, path, packets, truncated)


def cut_packet(store: Store, ref: PacketRef, search: tuple[Path, ...] = ()) -> SessionCut:
    """One packet alone (its session is not known)."""
    path = _locate(store, ref.capture_id, search)
    for batch in _batches(path, ref.frame, ref.frame):
        rows = np.nonzero(batch.frame == ref.frame)[0]
        if rows.size:
            lay = decode_layers(batch)
            return _finish(None, path, _take(batch, rows[:1], ref.capture_id, lay.pay_len), False)
    raise CutError(f"frame {ref.frame} is not in {path}")


def _finish(session_id: int | None, path: Path, packets: list[CutPacket], truncated: bool) -> SessionCut:
    fd, name = tempfile.mkstemp(prefix="plantwatch-packets-", suffix=".pcapng")
    os.close(fd)
    _made.add(name)
    with CommentedPcapng(name) as w:
        for p in packets:
            w.add(p.ts, p.linktype, p.data, p.wirelen, [])
    try:
        ops = _ops(name, packets)
    except Exception:
        _made.discard(name)
        os.unlink(name)
        raise
    return SessionCut(session_id, str(path), tuple(packets), ops, name, truncated)


_DIRS = {DIR_REQUEST: "request", DIR_RESPONSE: "response"}


def _ops(pcap: str, packets: list[CutPacket]) -> tuple[CutOp, ...]:
    """The ICS operations plantwatch's decoders find in the cut (reassembly included), each
    with the frame number it has in the original capture."""
    frames = np.array([p.frame for p in packets], dtype=np.int64)
    dec = Decoder()
    parts = []
    for batch in read_batches([pcap]):
        parts.append(dec.decode(batch).ops)
    if not parts:
        return ()
    ops = pl.concat(parts)
    return tuple(CutOp(int(frames[int(f) - 1]), _DIRS.get(d, "other"), n or "", CLASS_NAMES.get(c or 0, ""),
                       int(a or 0))
                 for f, d, n, c, a in ops.select("frame", "direction", "name", "cls", "app").iter_rows())


__all__ = ["CutError", "CutOp", "CutPacket", "SessionCut", "cut_packet", "cut_session", "MAX_PACKETS"]
