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

_MASK = 0xFFFF_FFFF_FFFF_FFFF
_KEY = ["proto", "c_hi", "c_lo", "c_port", "s_hi", "s_lo", "s_port"]


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


def capture_paths(store: Store, search: Sequence[Path] = ()) -> dict[int, Path | None]:
    """Each capture of the store and where its file is now: the stored path, else a file of the
    same name in one of `search`, else beside the store; None when it is nowhere."""
    out: dict[int, Path | None] = {}
    for cid, path in store.execute("SELECT capture_id, path FROM captures ORDER BY capture_id"):
        p = Path(path)
        found = None
        for cand in (p, *(Path(d) / p.name for d in search), Path(store.path).resolve().parent / p.name):
            if cand.is_file():
                found = cand
                break
        out[int(cid)] = found
    return out


def _sessions(store: Store, ids: Sequence[int]) -> pl.DataFrame:
    rows = []
    for chunk in range(0, len(ids), 500):
        part = list(ids[chunk:chunk + 500])
        rows += store.execute(
            "SELECT session_id, proto, client_hi, client_lo, client_port, server_hi, server_lo, server_port,"
            " first_ts, last_ts, first_file, first_frame, last_file, last_frame FROM sessions"
            f" WHERE session_id IN ({', '.join('?' * len(part))})", part).fetchall()
    cols = ["session_id", "proto", "c_hi", "c_lo", "c_port", "s_hi", "s_lo", "s_port", "first_ts",
            "last_ts", "first_file", "first_frame", "last_file", "last_frame"]
    df = pl.DataFrame([[(v & _MASK) if c in ("c_hi", "c_lo", "s_hi", "s_lo") else v for c, v in zip(cols, r, strict=True)]
                       for r in rows], schema=cols, orient="row")
    return df.with_columns(pl.col(["c_hi", "c_lo", "s_hi", "s_lo"]).cast(pl.UInt64),
                           pl.col(["proto", "c_port", "s_port"]).cast(pl.Int64),
                           pl.col(["first_ts", "last_ts", "first_frame", "last_frame", "session_id"]).cast(pl.Int64),
                           pl.col(["first_file", "last_file"]).cast(pl.Int64))


def _matches(lay, frames: np.ndarray, ts: np.ndarray, cid: int, sess: pl.DataFrame) -> pl.DataFrame:
    """(row, session_id) of the packets of a batch that belong to `sess`."""
    n = lay.n
    row = np.arange(n, dtype=np.int64)
    base = {"row": row, "frame": frames.astype(np.int64), "ts": ts.astype(np.int64)}
    fwd = pl.DataFrame({**base, "proto": lay.ip_proto.astype(np.int64),
                        "c_hi": lay.src_hi.astype(np.uint64), "c_lo": lay.src_lo.astype(np.uint64),
                        "c_port": lay.sport.astype(np.int64), "s_hi": lay.dst_hi.astype(np.uint64),
                        "s_lo": lay.dst_lo.astype(np.uint64), "s_port": lay.dport.astype(np.int64)})
    rev = fwd.select("row", "frame", "ts", "proto", pl.col("s_hi").alias("c_hi"), pl.col("s_lo").alias("c_lo"),
                     pl.col("s_port").alias("c_port"), pl.col("c_hi").alias("s_hi"),
                     pl.col("c_lo").alias("s_lo"), pl.col("c_port").alias("s_port"))
    parts = [fwd.filter(pl.col("proto") > 0), rev.filter(pl.col("proto") > 0)]
    q = lay.has_quote
    if q.any():
        parts.append(pl.DataFrame({
            "row": row[q], "frame": base["frame"][q], "ts": base["ts"][q],
            "proto": lay.q_proto[q].astype(np.int64), "c_hi": lay.q_src_hi[q].astype(np.uint64),
            "c_lo": lay.q_src_lo[q].astype(np.uint64), "c_port": lay.q_sport[q].astype(np.int64),
            "s_hi": lay.q_dst_hi[q].astype(np.uint64), "s_lo": lay.q_dst_lo[q].astype(np.uint64),
            "s_port": lay.q_dport[q].astype(np.int64)}))
    pk = pl.concat(parts, how="vertical_relaxed")
    j = pk.join(sess, on=_KEY, how="inner")
    in_span = (pl.col("ts") >= pl.col("first_ts")) & (pl.col("ts") <= pl.col("last_ts"))
    after_first = (pl.col("first_file") != cid) | (pl.col("frame") >= pl.col("first_frame"))
    before_last = (pl.col("last_file") != cid) | (pl.col("frame") <= pl.col("last_frame"))
    in_files = (pl.col("first_file") <= cid) & (pl.col("last_file") >= cid)
    return j.filter(in_span & after_first & before_last & in_files).select("row", "session_id").unique()


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
    sess = _sessions(store, sorted(by_session))
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
                    m = _matches(lay, fr, batch.ts, cid, cs)
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
