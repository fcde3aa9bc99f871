"""One analysis run over Zeek log directories, through the packet path's inventory, detector
and store (the Ingest passed in: `Ingest.run_zeek`).

Every log file is a row of `captures` (path, content fingerprint, records in `packets`), so a
file already analysed is skipped and evidence refs (capture id, line) point into it. The run is
one transaction: a log that cannot be read stops it with the store unchanged. The ICSNPP identity
logs (s7comm_known_devices, cip_identity) feed the device identity as packets do (identity.py),
here and in `plantwatch sensor --zeek` (follow.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from plantwatch.core.detection.detector import DetectResult
from plantwatch.core.inventory.devices import endpoints_from_sessions
from plantwatch.core.pipeline.zeek.build import ZeekBatch, build
from plantwatch.core.pipeline.zeek.identity import identity_records
from plantwatch.core.pipeline.zeek.reader import ZeekLog, ZeekLogError, read_log, ts_ns
from plantwatch.core.store import state as pipeline_state
from plantwatch.core.store.database import fingerprint
from plantwatch.core.store.identity import write_identity

if TYPE_CHECKING:
    from plantwatch.core.pipeline.ingest import CaptureInfo, Ingest, IngestReport

LOG_SUFFIXES = (".log", ".log.gz", ".json", ".json.gz", ".jsonl", ".jsonl.gz")


def log_files(paths: Iterable[str | Path]) -> list[Path]:
    """The Zeek logs in `paths` (directories are walked, sorted; files are taken as given)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(LOG_SUFFIXES))
        elif p.is_file():
            out.append(p)
        else:
            raise ZeekLogError(p, "no such file or directory")
    return out


def feed(ingest: Ingest, batch: ZeekBatch, *, final: bool) -> None:
    """Sessions of one batch into the inventory, the detector and the store (inside the
    caller's transaction). `final`: open sessions are counted too, and detection finishes."""
    inv = ingest.inventory
    ended, still = batch.ended, batch.open
    counted = pl.concat([ended, still]) if final else ended
    if batch.names.height:
        inv.update(batch.names, None, None)
    if counted.height:
        inv.add_endpoints(endpoints_from_sessions(counted))
        inv.add_sessions(counted)
    ingest.detector.update(None, None, ended)
    ingest._write_sessions(ended)
    ingest._write_sessions(still)


def run_zeek(ingest: Ingest, paths: Sequence[str | Path], *,
             on_warning: Callable[[str], None] | None = None) -> IngestReport:
    from plantwatch.core.pipeline.ingest import CaptureInfo, IngestReport

    files = log_files(paths)
    if not files:
        raise ZeekLogError(", ".join(map(str, paths)), "no Zeek logs (*.log, *.log.gz, *.json) found")
    known = {r[0]: r[1] for r in ingest.store.execute("SELECT fingerprint, capture_id FROM captures WHERE site = ?",
                                                      (ingest.store.site,))}
    infos = [CaptureInfo(str(p)) for p in files]
    todo: list[tuple[Path, CaptureInfo, str]] = []
    for p, info in zip(files, infos, strict=True):
        try:
            fp = fingerprint(p)
        except OSError as e:
            raise ZeekLogError(p, e.strerror or str(e)) from None
        if fp in known:
            info.skipped, info.capture_id = True, known[fp]
        else:
            todo.append((p, info, fp))
    report = IngestReport(captures=infos)
    if not todo:
        return report
    logs = [read_log(p) for p, _, _ in todo]  # all read before the store is touched
    for log in logs:
        check_times(log)
    if ingest.detector.result is not None:
        ingest.detector = ingest._new_detector()
    with ingest.store.transaction():
        ids = ingest.register_captures(todo)
        pairs = [(log, int(i)) for log, i in zip(logs, ids, strict=True)]
        batch = build(pairs)
        _count(pairs, [info for _, info, _ in todo])
        feed(ingest, batch, final=True)
        add_identity(ingest, pairs)
        report.detection = finish(ingest, batch.open)
        keep_identity(ingest)
        ingest.finish_captures(todo)
    report.packets = batch.records
    report.sessions = batch.ended.height + batch.open.height
    for _, info, _ in todo:
        report.warnings += info.warnings
    if on_warning:
        for w in report.warnings:
            on_warning(w)
    return report


def add_identity(ingest: Ingest, logs: list[tuple[ZeekLog, int]]) -> int:
    """The identity the ICSNPP identity logs among `logs` state, into the Ingest's identity table
    (its changes to the detector). Returns the identity records read."""
    recs = identity_records(logs)
    if recs.height:
        ingest.detector.add_identity_changes(ingest.identity.update(recs))
    return recs.height


def keep_identity(ingest: Ingest) -> None:
    """The identity table into the store: its rows for readers, its state for the next run."""
    write_identity(ingest.store, ingest.identity)
    pipeline_state.save(ingest.store, "identity", ingest.identity)


def finish(ingest: Ingest, still_open: pl.DataFrame) -> DetectResult:
    """The run's end: devices, detection over what was fed, state kept for the next run."""
    from plantwatch.core.pipeline import devices_out
    from plantwatch.core.pipeline.ingest import _for_sql, write_unverified_roles

    devices = ingest.inventory.devices()
    ingest.store.upsert("devices", _for_sql(devices))
    devices_out.forget(ingest.store)
    result = ingest.detector.finish(still_open, devices)
    write_unverified_roles(ingest.store, result, devices)
    pipeline_state.save(ingest.store, "devices", ingest.inventory)
    return result


def check_times(log: ZeekLog) -> None:
    """Decisions run on packet time: a log whose times are masked (Zeek's test baselines write
    XXXXXXXXXX.XXXXXX) or unreadable cannot be scored."""
    if "ts" not in log.frame.columns or log.height == 0:
        return
    ts = log.frame.select(ts_ns())["ts"]
    bad = ts.is_null() & log.frame["ts"].is_not_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise ZeekLogError(log.path, f"line {log.frame['_line'][i]}: time {log.frame['ts'][i]!r} is not "
                           "epoch seconds (masked?); plantwatch needs the records' times")


def _count(pairs: list[tuple[ZeekLog, int]], infos: list[CaptureInfo]) -> None:
    """Records and time span of each log file (its `captures` row)."""
    for (log, _), info in zip(pairs, infos, strict=True):
        info.packets = log.height
        if "ts" in log.frame.columns and log.height:
            ts = log.frame.select(ts_ns())["ts"].drop_nulls()
            if ts.len():
                info.first_ts, info.last_ts = int(ts.min()), int(ts.max())
