"""The store on PostgreSQL next to SQLite (`make bench`): packets/s of `plantwatch analyze` into
each, rows/s of the store's bulk write (Store.upsert of the run's sessions and operations), and
rows/s of a sensor's outage buffer forwarded into the server (core/pipeline/forward.py: the
SQLite store made a closed buffered batch, every row of it in one server transaction).

    .venv/bin/python bench/store_pg.py                    # 300,000 packets of the office plant
    .venv/bin/python bench/store_pg.py --packets 1000000

PostgreSQL is a private cluster started for the run (tests/pg_cluster.py: initdb in a temporary
directory, 127.0.0.1, fsync off as on a test box; a production server with fsync on commits
slower). Skipped with a message when PostgreSQL or psycopg is not installed. A report: exit 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import mixed  # noqa: E402

TABLES = ("sessions", "session_ops", "devices")


def _analyze(store: str, capture: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "plantwatch", "analyze", "--store", store, str(capture), "--json"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def _upsert_rate(source: str, target: str) -> tuple[int, float]:
    """Rows of TABLES read from `source`, written into the new store `target` in one transaction."""
    from plantwatch.core.store.database import Store

    with Store(source, readonly=True) as src:
        frames = {t: src.frame(f"SELECT * FROM {t}") for t in TABLES}
    with Store(target) as dst:
        t0 = time.perf_counter()
        with dst.bulk():
            for table, frame in frames.items():
                dst.upsert(table, frame)
        took = time.perf_counter() - t0
    return sum(f.height for f in frames.values()), took


def _forward_rate(source: str, target: str, tmp: Path) -> tuple[int, float]:
    """`source` (an SQLite store) as one closed batch of an outage buffer, forwarded into `target`."""
    import sqlite3

    from plantwatch.core.pipeline.buffer import BATCH_STATE, OutageBuffer
    from plantwatch.core.pipeline.forward import forward
    from plantwatch.core.pipeline.sensor_state import save_state
    from plantwatch.core.store.database import Store

    buffer = OutageBuffer(tmp / "buffer", None, None)
    buffer.dir.mkdir()
    batch = buffer.dir / "batch-00000001.sqlite"
    with sqlite3.connect(source) as src, sqlite3.connect(batch) as dst:
        src.backup(dst)
    with Store(batch) as st:
        save_state(st, BATCH_STATE, {"id": "bench", "seq": 1, "closed": True, "created": 0.0})
    with Store(target) as server:
        done = forward(server, buffer)
    return done.rows, done.seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=300_000)
    ap.add_argument("--plant", choices=sorted(mixed.PLANTS), default="office",
                    help="office: many short sessions, the store's heaviest write (default)")
    args = ap.parse_args(argv)
    try:
        import psycopg  # noqa: F401

        from tests.pg_cluster import Cluster, find_binaries
    except ImportError:
        print("store_pg: psycopg is not installed (pip install 'plantwatch[postgresql]'): skipped")
        return 0
    bindir = find_binaries()
    if bindir is None:
        print("store_pg: PostgreSQL is not installed (make setup installs it when root): skipped")
        return 0
    capture, _ = mixed.ensure(args.packets, plant=args.plant)
    cluster = Cluster(bindir)
    try:
        with tempfile.TemporaryDirectory(prefix="plantwatch-bench-") as tmp:
            lite = str(Path(tmp) / "bench.sqlite")
            stores = {"SQLite": lite, "PostgreSQL": cluster.create_database("bench")}
            run = {name: _analyze(loc, capture) for name, loc in stores.items()}
            bulk = {"SQLite": _upsert_rate(lite, str(Path(tmp) / "copy.sqlite")),
                    "PostgreSQL": _upsert_rate(lite, cluster.create_database("bench_copy"))}
            fwd_rows, fwd_s = _forward_rate(lite, cluster.create_database("bench_forward"), Path(tmp))
    finally:
        cluster.close()
    print(f"store engines, {args.plant} plant, {args.packets:,} packets ({', '.join(TABLES)} for rows/s)")
    print(f"{'engine':<12} {'analyze s':>10} {'packets/s':>12} {'rows':>10} {'write s':>8} {'rows/s':>10}")
    for name in stores:
        rows, took = bulk[name]
        print(f"{name:<12} {run[name]:>10.2f} {args.packets / run[name]:>12,.0f} {rows:>10,} {took:>8.2f}"
              f" {rows / took:>10,.0f}")
    print(f"outage buffer forwarded into PostgreSQL: {fwd_rows:,} rows of every table in {fwd_s:.2f} s, "
          f"{fwd_rows / fwd_s:,.0f} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
