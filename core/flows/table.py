"""The open-session table (numpy columns, one row per flow) and how segments merge into it;
the per-batch endpoint counters (ENDPOINTS) taken from the segments."""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.flows.schema import ENDPOINTS

# Open-table columns and how a new segment merges into them.
_SUM = ["pkts_ab", "pkts_ba", "bytes_ab", "bytes_ba", "pay_ab", "pay_ba", "syn_a", "syn_b",
        "synack_a", "synack_b", "rst_a", "rst_b", "fin_a", "fin_b", "cr_a", "cr_b", "dr_a", "dr_b",
        "unreach", "icmp_err", "nosni", "n_ops"]
# first value wins; -1 (or null for strings) is "not yet"
_FIRST = ["mac_a", "mac_b", "syn_seq", "syn_dir", "synack_dir", "ev_syn", "ev_synack", "ev_rst",
          "ev_fin", "ev_unreach", "ev_dr", "ev_op", "ev_tls", "ev_rdp"]
_LAST = ["last_ts", "last_ref", "last_pure_syn"]
_KEEP = ["sid", "fk", "proto", "a_hi", "a_lo", "a_port", "b_hi", "b_lo", "b_port", "first_ts",
         "first_ref", "orig_dir", "vlan"]
_STR_SCHEMA = {"tls_sni": pl.String(), "tls_ja3_hash": pl.String(), "tls_version": pl.Int32(),
               "cert_subject": pl.String(), "cert_issuer": pl.String(),
               "cert_self_signed": pl.Boolean(), "rdp_cookie": pl.String()}
_OPS_ACC = {"gk": pl.Int64(), "sid": pl.Int64(), "dir": pl.Int8(), "req": pl.Boolean(), "app": pl.UInt8(),
            "code": pl.Int32(), "cls": pl.UInt8(), "name": pl.String(), "count": pl.Int64(),
            "exceptions": pl.Int64(), "first_pos": pl.Int64(), "first_ref": pl.Int64()}
_APPS_ACC = {"sid": pl.Int64(), "app": pl.UInt8(), "n": pl.Int64()}
_EV = ["ev_syn", "ev_synack", "ev_rst", "ev_fin", "ev_unreach", "ev_dr", "ev_op", "ev_tls", "ev_rdp"]
_OPEN_COLS = _KEEP + _LAST + _SUM + _FIRST


def _endpoints(segs: dict[str, np.ndarray], junk: int) -> pl.DataFrame:
    """ENDPOINTS of the segments after the first `junk` (those of the junk flow)."""
    def g(k: str) -> np.ndarray:
        return segs[k][junk:]

    def side(x: str, y: str) -> dict[str, np.ndarray]:
        xy, yx = f"{x}{y}", f"{y}{x}"
        return {"hi": g(f"{x}_hi"), "lo": g(f"{x}_lo"),
                "mac": np.maximum(g(f"mac_{x}"), 0).astype(np.uint64),
                "pkts_sent": g("pkts_" + xy), "bytes_sent": g("bytes_" + xy),
                "pkts_recv": g("pkts_" + yx), "bytes_recv": g("bytes_" + yx),
                "first_ts": g("first_ts"), "last_ts": g("last_ts"), "vlan": g("vlan")}
    a, b = side("a", "b"), side("b", "a")
    both = {k: np.concatenate([a[k], b[k]]) for k in a}
    return pl.DataFrame(both).with_columns(
        pl.when(pl.col("vlan") >= 0).then(pl.col("vlan"))).cast(ENDPOINTS)


def _take(cols: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: cols[k][idx] for k in _OPEN_COLS}


def _pick(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """The rows of `mask` (no copy when it selects everything)."""
    if mask.all():
        return cols
    return _take(cols, np.flatnonzero(mask))


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if p["sid"].size]
    if not parts:
        return {k: np.zeros(0, dtype=np.int64) for k in _OPEN_COLS}
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in _OPEN_COLS}


class _OpenTable:
    """The open sessions, one row per flow key, as numpy columns with spare capacity.

    Rows live in slots; a removed row's slot is dead until the next compaction, so a batch
    costs O(rows it touches) plus two O(n) index edits, never a rebuild of every column.
    """

    COMPACT_MIN = 4096  # dead slots tolerated before compacting

    def __init__(self) -> None:
        self.cols: dict[str, np.ndarray] = _concat([])  # slot arrays (capacity long)
        self.size = 0                                   # slots used (live or dead)
        self.n = 0                                      # live rows
        self.alive = np.zeros(0, dtype=bool)
        self._keys = np.zeros(0, dtype=np.int64)        # fk of the live rows, sorted
        self._rows = np.zeros(0, dtype=np.int64)        # their slots

    def find(self, fks: np.ndarray) -> np.ndarray:
        """Slot of each flow key's open row, -1 when not open."""
        if self.n == 0:
            return np.full(fks.size, -1, dtype=np.int64)
        j = np.minimum(np.searchsorted(self._keys, fks), self._keys.size - 1)
        return np.where(self._keys[j] == fks, self._rows[j], -1)

    def live(self) -> np.ndarray:
        return np.flatnonzero(self.alive[: self.size])

    def take(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return _take(self.cols, rows)

    def remove(self, rows: np.ndarray) -> None:
        if rows.size == 0:
            return
        self.alive[rows] = False
        self.n -= int(rows.size)
        keep = self.alive[self._rows]
        self._keys, self._rows = self._keys[keep], self._rows[keep]
        if self.size - self.n > max(self.COMPACT_MIN, self.n):
            self._compact()

    def _compact(self, room: int = 0, dtypes: dict[str, np.dtype] | None = None) -> None:
        """Move the live rows, in slot order, to new columns with room for as many again plus
        `room` (of `dtypes` when given: an append's own); the sorted key index is only renumbered."""
        live = self.live()
        n = int(live.size)
        cap = max(1024, 2 * (n + room))
        for k, v in self.cols.items():
            c = np.zeros(cap, dtype=dtypes[k] if dtypes else v.dtype)
            c[:n] = v[live]
            self.cols[k] = c
        renumber = np.cumsum(self.alive[: self.size]) - 1
        self._rows = renumber[self._rows]
        self.size = self.n = n
        self.alive = np.zeros(cap, dtype=bool)
        self.alive[:n] = True

    def append(self, part: dict[str, np.ndarray]) -> None:
        k = int(part["sid"].size)
        if k == 0:
            return
        if self.size + k > self.alive.size:
            self._compact(k, {name: part[name].dtype for name in self.cols})
        a, b = self.size, self.size + k
        for name in _OPEN_COLS:
            self.cols[name][a:b] = part[name]
        self.alive[a:b] = True
        self.size = b
        self.n += k
        fk = part["fk"]
        slots = np.arange(a, b)
        if k > 1 and (fk[1:] < fk[:-1]).any():
            order = np.argsort(fk, kind="stable")
            fk, slots = fk[order], slots[order]
        pos = np.searchsorted(self._keys, fk)
        self._keys = np.insert(self._keys, pos, fk)
        self._rows = np.insert(self._rows, pos, slots)


def _fold_ops(o: pl.DataFrame) -> pl.DataFrame:
    """Merge op rows of the same (session, direction, op) key (by value: `gk` is per process)."""
    return o.group_by(["sid", "dir", "req", "app", "code", "cls", "name"]).agg(
        pl.col("gk").first(),
        pl.col("count").sum(), pl.col("exceptions").sum(),
        pl.col("first_pos").min(), pl.col("first_ref").get(pl.col("first_pos").arg_min()),
    ).select(list(_OPS_ACC))
