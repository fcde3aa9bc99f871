"""Where an analyze run's CPU time and memory go, without a profiler's overhead.

    .venv/bin/python bench/phases.py analyze CAPTURE --store S --json > out.json
    .venv/bin/python bench/phases.py --models analyze CAPTURE --store S --json > out.json
    .venv/bin/python bench/phases.py --wrap plantwatch.core.store.staged:upsert_staged analyze ...

Runs the plantwatch CLI with the pipeline's main functions wrapped: each wrapper adds the CPU time
spent inside it, minus the time of wrapped functions it called, so the figures add up to the run's
total (what no wrapper covers is printed as the rest: imports, reading, commits). It also notes
which function was running when the peak RSS grew. `--models` wraps every detection model's run;
`--wrap MODULE:QUALNAME` adds any function. cProfile inflates pure Python several times over while
C code (polars, SQLite) is counted as it is; this measures both alike. Pin it for steadier figures
(`taskset -c 0`, `POLARS_MAX_THREADS=1`). Generators (read_batches) are timed only as far as
creating them: their time is in the rest.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PIPELINE = (
    "plantwatch.core.decode:Decoder.decode",
    "plantwatch.core.flows.sessions:SessionTracker.update",
    "plantwatch.core.inventory.devices:DeviceInventory.update",
    "plantwatch.core.inventory.devices:DeviceInventory.devices",
    "plantwatch.core.detection.detector:Detector.update",
    "plantwatch.core.detection.detector:Detector.finish",
    "plantwatch.core.detection.detector:ContextBuilder.build",
    "plantwatch.core.pipeline.ingest:Ingest._write_sessions",
    "plantwatch.core.pipeline.ingest:Ingest.count_batch",
    "plantwatch.core.store.database:Store.upsert",
    "plantwatch.core.store.staged:upsert_staged",
    "plantwatch.core.store.bulk:DeferredIndexes.restore",
    "plantwatch.core.store.state:save",
    "plantwatch.tui.cli:_print_report",
)


class Phases:
    def __init__(self) -> None:
        self.own: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.grew: dict[str, int] = defaultdict(int)
        self.peak_mb = 0
        self._inner: list[float] = []

    def wrap(self, spec: str) -> None:
        module, qual = spec.split(":")
        owner: object = importlib.import_module(module)
        *path, name = qual.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, self._timed(f"{module.rsplit('.', 1)[-1]}.{qual}", getattr(owner, name)))

    def _timed(self, label: str, f: Callable) -> Callable:
        def timed(*args: object, **kwargs: object) -> object:
            t0 = time.process_time()
            self._inner.append(0.0)
            try:
                return f(*args, **kwargs)
            finally:
                spent = time.process_time() - t0
                self.own[label] += spent - self._inner.pop()
                self.calls[label] += 1
                if self._inner:
                    self._inner[-1] += spent
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
                if peak > self.peak_mb:
                    self.grew[label] += peak - self.peak_mb
                    self.peak_mb = peak
        return timed

    def report(self) -> None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        total = ru.ru_utime + ru.ru_stime
        out = sys.stderr
        print(f"CPU {total:.2f} s (user {ru.ru_utime:.2f}, sys {ru.ru_stime:.2f}); own time per function:", file=out)
        for label, spent in sorted(self.own.items(), key=lambda kv: -kv[1]):
            print(f"  {spent:7.3f}  x{self.calls[label]:<5} {label}", file=out)
        print(f"  {total - sum(self.own.values()):7.3f}  the rest (imports, reading, commits...)", file=out)
        print(f"peak RSS {ru.ru_maxrss // 1024} MB; it grew while these ran:", file=out)
        for label, mb in sorted(self.grew.items(), key=lambda kv: -kv[1])[:10]:
            print(f"  {mb:6d} MB  {label}", file=out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", action="store_true", help="also time every detection model")
    ap.add_argument("--wrap", action="append", default=[], metavar="MODULE:QUALNAME")
    ap.add_argument("cli", nargs=argparse.REMAINDER, help="plantwatch's own arguments")
    args = ap.parse_args()
    phases = Phases()
    for spec in (*PIPELINE, *args.wrap):
        phases.wrap(spec)
    if args.models:
        from plantwatch.core.detection.models import MODULES
        for mod in MODULES:
            phases.wrap(f"{mod.__name__}:run")
    atexit.register(phases.report)
    from plantwatch.tui.cli import main as cli

    sys.argv = ["plantwatch", *args.cli]
    cli()


if __name__ == "__main__":
    main()
