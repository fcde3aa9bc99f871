"""Finding a stored session's packets again in its capture: by its transport key (protocol, both
addresses and ports, either direction; an ICMP error by the header it quotes) inside the
session's packet-time span and frame range. Shared by the evidence export and the packet view.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from plantwatch.core.store.database import Store

_MASK = 0xFFFF_FFFF_FFFF_FFFF
_KEY = ["proto", "c_hi", "c_lo", "c_port", "s_hi", "s_lo", "s_port"]


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


def session_rows(store: Store, ids: Sequence[int]) -> pl.DataFrame:
    rows = []
    for chunk in range(0, len(ids), 500):
        part = list(ids[chunk:chunk + 500])
        rows += store.execute(
            "SELECT session_id, proto, client_hi, client_lo, client_port, server_hi, server_lo, server_port,"
            " first_ts, last_ts, first_file, first_frame, last_file, last_frame FROM sessions"
            f" WHERE site = ? AND session_id IN ({', '.join('?' * len(part))})", (store.site, *part)).fetchall()
    cols = ["session_id", "proto", "c_hi", "c_lo", "c_port", "s_hi", "s_lo", "s_port", "first_ts",
            "last_ts", "first_file", "first_frame", "last_file", "last_frame"]
    df = pl.DataFrame([[(v & _MASK) if c in ("c_hi", "c_lo", "s_hi", "s_lo") else v for c, v in zip(cols, r, strict=True)]
                       for r in rows], schema=cols, orient="row")
    return df.with_columns(pl.col(["c_hi", "c_lo", "s_hi", "s_lo"]).cast(pl.UInt64),
                           pl.col(["proto", "c_port", "s_port"]).cast(pl.Int64),
                           pl.col(["first_ts", "last_ts", "first_frame", "last_frame", "session_id"]).cast(pl.Int64),
                           pl.col(["first_file", "last_file"]).cast(pl.Int64))


def session_keys(lay, frames: np.ndarray, ts: np.ndarray, cid: int, sess: pl.DataFrame) -> pl.DataFrame:
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


__all__ = ["capture_paths", "session_keys", "session_rows"]
