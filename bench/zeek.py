"""Zeek-log part of `make bench`: how many Zeek log records per second plantwatch scores.

    .venv/bin/python bench/zeek.py                    # 100 copies of the public pairs (~310k records)
    .venv/bin/python bench/zeek.py --copies 400 --json figures.json

The logs are the public capture+log pairs of tests/data/zeek (ICSNPP and Zeek's btest: Modbus,
S7comm, DNP3, EtherNet/IP-CIP, DHCP, TLS), their masked times put back from their captures
(tests/zeek_support.unmask), then written K times into one log directory as a cluster's logger
would: every copy with its own uids, addresses (10.<k>.<k>.<host>) and an hour later, so the
inventory and the sessions grow with K. Measured, wall time on this machine: reading the logs
(reader), turning them into sessions and operations (build), and `plantwatch analyze --zeek`'s
whole run into a temporary SQLite store (Ingest.run_zeek: read, build, inventory, detection,
store writes, commit). It is a report; it exits 0.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from plantwatch.core.pipeline.ingest import Ingest  # noqa: E402
from plantwatch.core.pipeline.zeek.build import build  # noqa: E402
from plantwatch.core.pipeline.zeek.reader import read_log  # noqa: E402
from plantwatch.core.pipeline.zeek.run import log_files  # noqa: E402
from plantwatch.core.store.database import Store  # noqa: E402
from tests.zeek_support import ZEEK_DATA, unmask  # noqa: E402

PAIRS = ("modbus", "s7comm_snap7", "dnp3", "enip", "zeek_dhcp", "zeek_ssl")
_V4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
_TS = re.compile(r"^\d{9,10}\.\d{6}$")


def make_cluster_logs(out: Path, copies: int, work: Path) -> int:
    """One log directory holding `copies` shifted copies of every pair's logs; returns records."""
    sources = [unmask(ZEEK_DATA / n, work / n) for n in PAIRS]
    heads: dict[str, list[str]] = {}
    bodies: dict[str, list[list[str]]] = {}
    for src in sources:
        for p in sorted(src.glob("*.log")):
            lines = p.read_text().splitlines()
            head = [ln for ln in lines if ln.startswith("#") and not ln.startswith("#close")]
            key = f"{p.stem}.{src.name}.log"  # one file per source layout; its log name stays p.stem
            heads.setdefault(key, head)
            bodies.setdefault(key, []).extend(ln.split("\t") for ln in lines if not ln.startswith("#"))
    out.mkdir(parents=True, exist_ok=True)
    records = 0
    for name, rows in bodies.items():
        with (out / name).open("w") as fh:
            if heads[name]:
                fh.write("\n".join(heads[name]) + "\n")
            for k in range(copies):
                shift = k * 3600
                for cols in rows:
                    fh.write("\t".join(_copy(c, k, shift) for c in cols) + "\n")
                    records += 1
    return records


def _copy(c: str, k: int, shift: int) -> str:
    if _TS.match(c):
        s, f = c.split(".")
        return f"{int(s) + shift}.{f}"
    m = _V4.match(c)
    if m and c not in ("0.0.0.0", "255.255.255.255"):
        return f"10.{k // 256}.{k % 256}.{m.group(4)}"
    if c.startswith("C") and len(c) >= 15 and c.isalnum():  # a uid
        return f"{c}{k}"
    return c


def timed(fn):  # noqa: ANN001, ANN201 - a bench helper
    t = time.perf_counter()
    r = fn()
    return r, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=100, help="copies of the public pairs (default 100)")
    ap.add_argument("--json", dest="json_path", help="write the figures as JSON here ('-': stdout)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="plantwatch-zeek-bench-") as tmp:
        base = Path(tmp)
        logs_dir = base / "logs"
        records = make_cluster_logs(logs_dir, args.copies, base / "src")
        files = log_files([logs_dir])
        logs, t_read = timed(lambda: [read_log(p) for p in files])
        batch, t_build = timed(lambda: build([(lg, i + 1) for i, lg in enumerate(logs)]))

        def analyze() -> object:
            with Store(base / "bench.sqlite") as store:
                return Ingest(store).run_zeek([logs_dir])
        rep, t_run = timed(analyze)
        size = sum(p.stat().st_size for p in files)
    fig = {
        "copies": args.copies, "records": records, "log_bytes": size,
        "sessions": batch.ended.height + batch.open.height, "operations": batch.ops.height,
        "breaches": len(rep.detection.breaches) if rep.detection else 0,
        "read_records_per_s": records / t_read, "build_records_per_s": records / t_build,
        "scored_records_per_s": records / t_run, "run_s": t_run,
    }
    print(f"Zeek logs: {records:,} records ({size / 1e6:.1f} MB, {len(files)} files, {args.copies} copies "
          f"of {len(PAIRS)} public pairs), {fig['sessions']:,} sessions, {fig['operations']:,} ICS operations")
    print(f"  read (reader)                     {fig['read_records_per_s']:>12,.0f} records/s")
    print(f"  read + sessions/ops (build)       {records / (t_read + t_build):>12,.0f} records/s")
    print(f"  analyze --zeek, end to end        {fig['scored_records_per_s']:>12,.0f} records/s "
          f"({t_run:.1f} s; inventory, detection, SQLite store; {fig['breaches']} breaches)")
    if args.json_path:
        text = json.dumps(fig, indent=2)
        if args.json_path == "-":
            print(text)
        else:
            Path(args.json_path).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
