"""Follow a Zeek log directory as the cluster's logger writes and rotates it (`plantwatch sensor
--zeek DIR`).

Zeek's logger appends to conn.log, modbus.log ... and at each rotation interval renames them
(conn.2026-12-04-10-00-00.log, or moves them to an archive and compresses them) and starts new
ones. Files are followed by inode, not by name, so a renamed file is read on from where it was;
a compressed archive is a copy of lines already read and is ignored. Only complete lines are read.

Each file is a `captures` row (fingerprint zeek:<device>:<inode>, which a rename keeps); its
`size` is the bytes consumed and `packets` the records read, so a restarted sensor resumes each
file where it stopped (exactly once). A file shorter than what was consumed of its inode is a new
file on a reused inode: the old row is retired and the new file read from its start. Lines of connections not closed yet (no conn.log line) are kept as pending state
in the store and joined again at every poll, so a connection's operations stay with it when its
conn.log line arrives in a later file; its live view is an open session. The ICSNPP identity
logs (s7comm_known_devices, cip_identity) are read as `analyze --zeek` reads them (identity.py),
each line once, as it arrives: they state a device's identity, not a connection's operations,
so they are neither held for their connection nor dropped when it has closed.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from plantwatch.core.flows.stateful import ComponentState, StateError, Stateful
from plantwatch.core.inventory.zones import Zones
from plantwatch.core.pipeline.zeek.build import build
from plantwatch.core.pipeline.zeek.identity import LOGS as IDENTITY_LOGS
from plantwatch.core.pipeline.zeek.reader import Header, ZeekLog, ZeekLogError, parse_text, ts_ns
from plantwatch.core.pipeline.zeek.run import add_identity, feed, finish, keep_identity
from plantwatch.core.store import state as pipeline_state
from plantwatch.core.store.database import Store

if TYPE_CHECKING:
    from plantwatch.core.pipeline.siem import Forwarder

log = logging.getLogger("plantwatch.zeek")
# not held while a connection is open (nor dropped after it closed)
_PROTOCOL_LOGS = ("conn", "open_conn", "conn_long", "dns", "dhcp", "x509", *IDENTITY_LOGS)
_ENDED_MEMORY = 200_000  # keys of closed connections remembered (late protocol lines are dropped)
PENDING_STATE = "zeek_pending"


@dataclass
class _File:
    capture_id: int
    path: Path
    offset: int = 0
    records: int = 0
    lines: int = 0
    header: Header = field(default_factory=Header)
    first_ts: int | None = None
    last_ts: int | None = None


class _Pending(Stateful):
    """Protocol lines of open connections, one frame per log name (saved in `state` as
    attributes `_p_<log name>`; which logs varies, so the frames are not a fixed list)."""

    def to_state(self) -> ComponentState:
        return ComponentState(self.STATE_VERSION, {k: v for k, v in vars(self).items() if k.startswith("_p_")})

    def from_state(self, state: ComponentState) -> None:
        if state.version > self.STATE_VERSION or state.scalars or any(not k.startswith("_p_") for k in state.frames):
            raise StateError(f"pending Zeek lines saved in another layout (version {state.version})")
        for k, v in state.frames.items():
            setattr(self, k, v)


class ZeekFollower:
    def __init__(self, store: Store, log_dir: str | Path, zones: Zones | None = None,
                 models: dict | None = None, *, detect_every_s: float = 60.0) -> None:
        from plantwatch.core.pipeline.ingest import Ingest

        self.store = store
        self.dir = Path(log_dir)
        self.ingest = Ingest(store, zones, mode="detect", models=models)
        self.detect_every_s = detect_every_s
        self.files: dict[tuple[int, int], _File] = {}
        self.pending: dict[str, pl.DataFrame] = {}
        self.ended: OrderedDict[str, None] = OrderedDict()
        self.records = 0
        holder = _Pending()
        if pipeline_state.load(store, PENDING_STATE, holder):
            self.pending = {k[3:]: v for k, v in vars(holder).items()
                            if k.startswith("_p_") and isinstance(v, pl.DataFrame)}

    # --- reading --------------------------------------------------------------------------------

    def _capture(self, path: Path, st: os.stat_result) -> _File:
        fp = f"zeek:{st.st_dev}:{st.st_ino}"
        row = self.store.execute("SELECT capture_id, size, packets FROM captures WHERE fingerprint = ? AND site = ?",
                                 (fp, self.store.site)).fetchone()
        if row is not None and st.st_size < int(row[1]):  # the inode was reused by a new file
            self.store.execute("UPDATE captures SET fingerprint = fingerprint || ':' || capture_id, "
                               "status = 'complete' WHERE capture_id = ?", (row[0],))
            row = None
        if row is None:
            cur = self.store.execute("INSERT INTO captures (path, fingerprint, size, packets, status, site, sensor) "
                                     "VALUES (?, ?, 0, 0, 'partial', ?, ?)",
                                     (str(path.resolve()), fp, self.store.site, self.store.sensor))
            return _File(int(cur.lastrowid or 0), path)
        f = _File(int(row[0]), path, offset=int(row[1]), records=int(row[2]))
        if f.offset:  # resume: the header and line count of what was consumed before
            with path.open("rb") as fh:
                done = fh.read(f.offset).decode("utf-8", "replace")
            f.lines = done.count("\n")
            parse_text("\n".join(ln for ln in done.split("\n") if ln.startswith("#")) + "\n", path,
                       header=f.header)
        return f

    def _read_new(self) -> list[tuple[ZeekLog, _File]]:
        try:
            names = sorted(p for p in self.dir.iterdir() if p.name.endswith(".log") and p.is_file())
        except OSError as e:
            raise ZeekLogError(self.dir, e.strerror or str(e)) from None
        seen, out = set(), []
        for p in names:
            try:
                st = p.stat()
            except FileNotFoundError:  # rotated away between listing and stat
                continue
            key = (st.st_dev, st.st_ino)
            seen.add(key)
            f = self.files.get(key)
            if f is None:
                f = self.files[key] = self._capture(p, st)
            if f.path != p:  # renamed by the rotation: the evidence follows it
                self.store.execute("UPDATE captures SET path=? WHERE capture_id=?", (str(p.resolve()), f.capture_id))
                f.path = p
            if st.st_size <= f.offset:
                continue
            with p.open("rb") as fh:
                fh.seek(f.offset)
                chunk = fh.read(st.st_size - f.offset)
            end = chunk.rfind(b"\n")
            if end < 0:
                continue
            chunk = chunk[:end + 1]
            text = chunk.decode("utf-8", "replace")
            zl = parse_text(text, p, first_line=f.lines + 1, header=f.header)
            f.offset += len(chunk)
            f.lines += text.count("\n")
            f.records += zl.height
            out.append((zl, f))
        for key in [k for k in self.files if k not in seen]:
            del self.files[key]  # rotated out of the directory (archived): fully read before
        return out

    # --- one poll ---------------------------------------------------------------------------------

    def poll(self) -> int:
        """Read what was appended, score it, commit. Returns the records read."""
        with self.store.transaction():
            new = self._read_new()
            if not new:
                return 0
            logs = [(zl, f.capture_id) for zl, f in new]
            logs = [(lg, fid) for lg, fid in logs if lg.height]
            for zl, _ in logs:  # late lines of connections already closed: nothing to add to
                if zl.name not in _PROTOCOL_LOGS and self.ended and "_key" in zl.frame.columns:
                    zl.frame = zl.frame.filter(~pl.col("_key").is_in(list(self.ended)))
            held = [(ZeekLog(name, f"{name}.pending", frame.drop("_fid")), fid)
                    for name, frames in self.pending.items()
                    for (fid,), frame in frames.partition_by("_fid", as_dict=True).items()]
            batch = build(held + logs)
            feed(self.ingest, batch, final=False)
            if add_identity(self.ingest, logs):  # the new lines only: held ones are never identity
                keep_identity(self.ingest)
            closed = set(_conn_keys(held + logs))
            for k in closed:
                self.ended[k] = None
            while len(self.ended) > _ENDED_MEMORY:
                self.ended.popitem(last=False)
            self._hold(held + logs, closed)
            inv = self.ingest.inventory
            inv.update(pl.DataFrame(), None, None, open_sessions=batch.open)
            devices = inv.devices()
            from plantwatch.core.pipeline import devices_out
            from plantwatch.core.pipeline.ingest import _for_sql

            self.store.upsert("devices", _for_sql(devices))
            devices_out.forget(self.store)
            checkpoint = getattr(self.ingest.detector, "checkpoint", None)
            if checkpoint is not None:
                checkpoint(batch.open, devices, every_s=self.detect_every_s)
            for zl, f in new:
                self._account(zl, f)
            n = sum(zl.height for zl, _ in new)
            self.records += n
            return n

    def _hold(self, logs: list[tuple[ZeekLog, int]], closed: set[str]) -> None:
        parts: dict[str, list[pl.DataFrame]] = {}
        for zl, fid in logs:
            if zl.name in _PROTOCOL_LOGS or "_key" not in zl.frame.columns or zl.height == 0:
                continue
            keep = zl.frame.filter(~pl.col("_key").is_in(list(closed))) if closed else zl.frame
            if keep.height:
                parts.setdefault(zl.name, []).append(keep.with_columns(pl.lit(fid, pl.Int64).alias("_fid")))
        self.pending = {k: pl.concat(v, how="diagonal_relaxed") for k, v in parts.items()}
        holder = _Pending()
        for k, v in self.pending.items():
            setattr(holder, "_p_" + k, v)
        pipeline_state.save(self.store, PENDING_STATE, holder)

    def _account(self, zl: ZeekLog, f: _File) -> None:
        if "ts" in zl.frame.columns and zl.height:
            ts = zl.frame.select(ts_ns())["ts"].drop_nulls()
            if ts.len():
                lo, hi = int(ts.min()), int(ts.max())
                f.first_ts = lo if f.first_ts is None else min(f.first_ts, lo)
                f.last_ts = hi if f.last_ts is None else max(f.last_ts, hi)
        self.store.execute(
            "UPDATE captures SET path=?, size=?, packets=?, first_ts=COALESCE(first_ts, ?), last_ts=? "
            "WHERE capture_id=?", (str(f.path.resolve()), f.offset, f.records, f.first_ts, f.last_ts, f.capture_id))

    def close(self) -> None:
        """End of the run: detection over what was read, devices and pending lines saved."""
        with self.store.transaction():
            held = [(ZeekLog(name, f"{name}.pending", frame.drop("_fid")), fid)
                    for name, frames in self.pending.items()
                    for (fid,), frame in frames.partition_by("_fid", as_dict=True).items()]
            still_open = build(held).open if held else None
            finish(self.ingest, still_open if still_open is not None else pl.DataFrame())


def _conn_keys(logs: list[tuple[ZeekLog, int]]) -> list[str]:
    """The join keys (uid and connection id) of the conn.log records in this batch."""
    keys: list[str] = []
    for zl, _ in logs:
        if zl.name == "conn" and "_key" in zl.frame.columns:
            keys += zl.frame["_key"].to_list()
    return keys


def _forward(siem: Forwarder | None, store: Store) -> None:
    if siem is not None:
        nb, ni = siem.forward(store)
        if nb or ni:
            log.info("syslog %s: %d breach(es) and %d incident(s) to send, %d waiting for the target",
                     siem.sender.target, nb, ni, siem.sender.pending)


def follow(store_path: str | Path, log_dir: str | Path, *, zones: Zones | None = None,
           poll_s: float = 1.0, exit_idle_s: float | None = None, run_seconds: float | None = None,
           siem: Forwarder | None = None) -> int:
    """`plantwatch sensor --zeek DIR`: follow until SIGTERM/SIGINT (or idle/run limits, for
    tests). Returns the exit status: 0 on a clean stop, 2 when a log cannot be read. `siem`
    sends what each commit added to a SIEM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    started = last_data = time.monotonic()
    try:
        with Store(store_path) as store, store.writer(until_stopped=True):   # its state lives in memory
            f = ZeekFollower(store, log_dir, zones)
            if siem is not None:
                siem.prime(store)
            log.info("following Zeek logs in %s", log_dir)
            while not stop:
                n = f.poll()
                now = time.monotonic()
                if n:
                    last_data = now
                    log.info("%d records scored (%d in all)", n, f.records)
                    _forward(siem, store)
                elif exit_idle_s is not None and now - last_data >= exit_idle_s:
                    break
                if run_seconds is not None and now - started >= run_seconds:
                    break
                if not n:
                    time.sleep(poll_s)
            f.close()
            _forward(siem, store)
    except ZeekLogError as e:
        log.error("%s", e)
        return 2
    return 0
