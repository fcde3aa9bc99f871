"""The packets behind an incident: every packet of its breaches' evidence sessions (and every
evidence packet they name), cut out of the original captures into one commented pcapng.

Sessions are found again in the captures by their transport key (protocol, both addresses and
ports, either direction; an ICMP error by the header it quotes) inside the session's packet-time
span and frame range. Each packet carries pcapng comments naming the breaches it is evidence of
and where it came from, so Wireshark shows why it is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from plantwatch.core.capture.batch import CaptureError
from plantwatch.core.capture.files import read_batches
from plantwatch.core.capture.pcapng_out import CommentedPcapng
from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.decode.layers import decode_layers
from plantwatch.core.store.database import Store
from plantwatch.core.views.session_match import capture_paths, session_keys, session_rows


class ExportError(Exception):
    """The export cannot be made; str() is one line naming what is missing."""


@dataclass(frozen=True, slots=True)
class EvidenceBreach:
    breach_id: int
    model_id: str
    title: str
    sessions: tuple[int, ...]
    refs: tuple[int, ...]          # packed PacketRefs


@dataclass(slots=True)
class EvidencePackets:
    packets: int = 0
    sessions: int = 0
    captures: list[str] = field(default_factory=list)   # file names read


def write_evidence(store: Store, breaches: Sequence[EvidenceBreach], out: Path,
                   search: Sequence[Path] = ()) -> EvidencePackets:
    """Write `out` (pcapng) with every packet of the breaches' evidence sessions and packets, in
    packet-time order, each commented with the breaches it proves. Raises ExportError when a
    capture that holds evidence cannot be found."""
    by_session: dict[int, list[EvidenceBreach]] = {}
    named: dict[tuple[int, int], list[EvidenceBreach]] = {}
    for b in breaches:
        for s in b.sessions:
            by_session.setdefault(int(s), []).append(b)
        for r in b.refs:
            p = PacketRef.unpack(r)
            named.setdefault((p.capture_id, p.frame), []).append(b)
    sess = session_rows(store, sorted(by_session))
    paths = capture_paths(store, search)
    wanted: dict[int, int | None] = {}     # capture id -> last frame needed (None: to its end)
    for r in sess.iter_rows(named=True):
        for cid in range(int(r["first_file"]), int(r["last_file"]) + 1):
            last = int(r["last_frame"]) if cid == r["last_file"] else None
            prev = wanted.get(cid, 0)
            wanted[cid] = None if prev is None or last is None else max(prev, last)
    for cid, frame in named:
        prev = wanted.get(cid, 0)
        wanted[cid] = None if prev is None else max(prev, frame)
    names = dict(store.execute("SELECT capture_id, path FROM captures").fetchall())
    found: list[tuple[int, int, int, int, bytes, int, list[str]]] = []
    result = EvidencePackets(sessions=sess.height)
    for cid in sorted(wanted):
        path = paths.get(cid)
        if path is None:
            where = names.get(cid, f"capture {cid}")
            raise ExportError(f"{where}: the capture holding the evidence is gone (moved or deleted); "
                              "give the folder it is in now with --captures DIR")
        result.captures.append(path.name)
        cs = sess.filter((pl.col("first_file") <= cid) & (pl.col("last_file") >= cid))
        last = wanted[cid]
        # frame spans of the sessions in this file (and the named frames): batches outside all
        # of them are not decoded
        lo = np.array([r[0] if r[2] == cid else 1 for r in cs.select("first_frame", "last_frame", "first_file",
                                                                    "last_file").iter_rows()]
                      + [f for c, f in named if c == cid], dtype=np.int64)
        hi = np.array([r[1] if r[3] == cid else 1 << 62 for r in cs.select("first_frame", "last_frame",
                                                                         "first_file", "last_file").iter_rows()]
                      + [f for c, f in named if c == cid], dtype=np.int64)
        named_here = np.array([f for c, f in named if c == cid], dtype=np.int64)
        try:
            for batch in read_batches([path]):
                fr = batch.frame
                if last is not None and int(fr.min()) > last:
                    break
                if not ((lo <= int(fr.max())) & (hi >= int(fr.min()))).any():
                    continue
                lay = decode_layers(batch)
                rows: dict[int, set[int]] = {}
                if cs.height:
                    m = session_keys(lay, fr, batch.ts, cid, cs)
                    for row, sid in m.iter_rows():
                        rows.setdefault(int(row), set()).add(int(sid))
                for i in np.nonzero(np.isin(fr, named_here))[0]:
                    rows.setdefault(int(i), set())
                for i, sids in rows.items():
                    frame = int(fr[i])
                    comments = _comments(sids, by_session, named.get((cid, frame), []))
                    comments.append(f"source: {path.name} frame {frame}")
                    o = int(batch.offset[i])
                    data = batch.data[o:o + int(batch.caplen[i])].tobytes()
                    found.append((int(batch.ts[i]), cid, frame, int(batch.linktype[i]), data,
                                  int(batch.wirelen[i]), comments))
        except CaptureError as e:
            raise ExportError(str(e)) from None
    found.sort(key=lambda p: (p[0], p[1], p[2]))
    with CommentedPcapng(out) as w:
        for ts, _cid, _frame, linktype, data, wirelen, comments in found:
            w.add(ts, linktype, data, wirelen, comments)
    result.packets = len(found)
    return result


def _comments(sids: set[int], by_session: dict[int, list[EvidenceBreach]],
              named: list[EvidenceBreach]) -> list[str]:
    """A packet named as evidence gets one full comment per breach naming it (title, id, model);
    every packet of an evidence session gets one short comment listing its breaches and session."""
    out = [f"evidence packet of breach {b.breach_id}: {b.title} [{b.model_id}]"
           for b in sorted({b.breach_id: b for b in named}.values(), key=lambda b: b.breach_id)]
    for sid in sorted(sids):
        bs = sorted({b.breach_id: b for b in by_session.get(sid, [])}.values(), key=lambda b: b.breach_id)
        if bs:
            out.append(f"session {sid} of breach " + ", ".join(f"{b.breach_id} [{b.model_id}]" for b in bs))
    return out


def evidence_breaches(rows: Sequence[dict]) -> list[EvidenceBreach]:
    """From the report's breach dicts (plantwatch.core.views.report.breaches)."""
    return [EvidenceBreach(int(b["breach_id"]), b["model_id"], b["model"],
                           tuple(int(s) for s in b["evidence"]["sessions"]),
                           tuple(PacketRef(p["capture_id"], p["frame"]).pack() for p in b["evidence"]["packets"]))
            for b in rows]


__all__ = ["ExportError", "EvidenceBreach", "EvidencePackets", "capture_paths", "write_evidence",
           "evidence_breaches"]
