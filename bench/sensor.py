"""Sensor load benchmark: the highest packet rate the sensor sustains with no pipeline drop, and
its memory over a long run.

    python bench/sensor.py                       # rising rates, then a long run of 10M packets
    python bench/sensor.py --rates 20000,50000 --seconds 10 --long-packets 2000000
    python bench/sensor.py --busy-neighbour --rates 50000,75000 --long-packets 0   # a core kept busy

A writer process plays dumpcap: it writes a ring of pcapng files (`--ring-size-mb` each, at most
`--ring-files` of them, the oldest deleted, blocks flushed every 20 ms) at a fixed packet rate,
stamping packets with the wall clock; the packets are the mixed plant capture of bench/mixed.py
(cycled). The sensor (plantwatch.core.pipeline.sensor.Sensor following the ring, in its own process, default
settings) decodes, tracks sessions, detects and commits to a store. At a rate the sensor cannot
sustain its lag grows until rotation removes files it has not read: those are pipeline drops
(the follower counts them). A rate passes when no file was missed and every packet written was
ingested. Capture itself (dumpcap and the kernel) is not part of this figure: see the live test
in tests/test_sensor_live.py for the real path.

The long run plays `--long-packets` packets at a rate the sensor sustained and samples the
sensor's RSS; it reports RSS against packets ingested (it should stay flat).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `core` and `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PACKETS = 200_000
ALIVE = "writer.alive"
_STATUS = re.compile(r"status: (\d+) packets .*?lag (\d+) bytes")
_CLOSED = re.compile(r"run \d+ closed: state saved in ([\d.]+) s")


# --------------------------------------------------------------------------- the writer (dumpcap's part)

def _template(packets: int) -> tuple[np.ndarray, np.ndarray]:
    """EPB blocks of the first `packets` packets of the mixed capture: (bytes, block offsets)."""
    from bench import mixed
    from plantwatch.core.capture.files import read_batches

    cached = mixed.CACHE_DIR / f"sensor-template-v{mixed.VERSION}-{packets}.npz"
    if cached.exists():
        z = np.load(cached)
        return z["buf"], z["offs"]
    cap, _ = mixed.ensure(1_000_000 if packets > 20_000 else 20_000,
                          log=lambda m: print(m, file=sys.stderr))
    parts: list[bytes] = []
    n = 0
    for b in read_batches([cap], chunk_packets=65536):
        for i in range(len(b)):
            o, c = int(b.offset[i]), int(b.caplen[i])
            pad = (-c) % 4
            blen = 32 + c + pad
            parts.append(np.array([6, blen, 0, 0, 0, c, int(b.wirelen[i])], "<u4").tobytes()
                         + bytes(b.data[o:o + c]) + b"\0" * pad + np.array([blen], "<u4").tobytes())
            n += 1
            if n >= packets:
                break
        if n >= packets:
            break
    lens = np.array([len(p) for p in parts], dtype=np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
    buf = np.frombuffer(b"".join(parts), np.uint8).copy()
    mixed.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(cached, buf=buf, offs=offs)
    return buf, offs


def _header() -> bytes:
    shb = np.array([0x0A0D0D0A, 28, 0x1A2B3C4D, 0x00000001, 0xFFFFFFFF, 0xFFFFFFFF, 28], "<u4").tobytes()
    idb = np.array([1, 20, 1, 262144, 20], "<u4").tobytes()  # linktype 1, snaplen, µs timestamps
    return shb + idb


def writer(ring: Path, rate: float, packets: int, size_mb: float, files: int, template: int) -> dict:
    tb, offs = _template(template)
    n_t = offs.shape[0]
    ends = np.append(offs[1:], tb.shape[0])
    prefix = f"pw-{int(time.time() * 1000)}"
    size = int(size_mb * 1_000_000)
    alive = ring / ALIVE
    alive.write_text(str(os.getpid()))
    seq, out, live = 0, None, []
    written = 0
    t0 = time.monotonic()
    wall0 = time.time_ns() // 1000
    ar4 = np.arange(4)
    try:
        while written < packets:
            if out is None or out.tell() >= size:
                if out is not None:
                    out.close()
                seq += 1
                stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
                path = ring / f"{prefix}_{seq:05d}_{stamp}.pcapng"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                out = os.fdopen(fd, "wb")
                out.write(_header())
                live.append(path)
                while len(live) > files:
                    live.pop(0).unlink(missing_ok=True)
            due = min(int(rate * (time.monotonic() - t0)) - written, packets - written, 20000)
            if due <= 0:
                time.sleep(0.02)
                continue
            i = written % n_t
            j = min(i + due, n_t)
            k = j - i
            chunk = tb[offs[i]:ends[j - 1]].copy()
            ts = wall0 + ((written + np.arange(k)) * (1e6 / rate)).astype(np.int64)
            at = (offs[i:j] - offs[i])[:, None] + ar4
            chunk[at + 12] = (ts >> 32).astype("<u4").view(np.uint8).reshape(-1, 4)
            chunk[at + 16] = (ts & 0xFFFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)
            out.write(chunk.tobytes())
            out.flush()
            written += k
    finally:
        if out is not None:
            out.close()
        alive.unlink(missing_ok=True)
    secs = time.monotonic() - t0
    return {"written": written, "seconds": secs, "rate": written / secs if secs else 0.0, "files": seq}


# --------------------------------------------------------------------------- the sensor

def sensor_main(store: Path, ring: Path) -> int:
    from plantwatch.core.pipeline.sensor import Sensor, SensorConfig, configure_logging

    configure_logging()
    # runs of 10 s instead of 60: every rate step includes several run ends (detection, baseline
    # learning and the state saved), the pipeline's longest pauses
    cfg = SensorConfig(report_s=1.0, exit_idle_s=1.0,
                       run_seconds=float(os.environ.get("PLANTWATCH_BENCH_RUN_SECONDS", "10")))
    s = Sensor(store, ring, config=cfg, writer_active=lambda: (ring / ALIVE).exists())
    s.install_signals()
    return s.run()


# --------------------------------------------------------------------------- orchestration

def _me() -> list[str]:
    return [sys.executable, str(Path(__file__).resolve())]


class _Sensor:
    def __init__(self, work: Path) -> None:
        self.ring = work / "ring"
        self.store = work / "s.sqlite"
        self.ring.mkdir(mode=0o700)
        (self.ring / ALIVE).write_text("starting")  # the writer removes it when it is done
        self.proc = subprocess.Popen([*_me(), "--role", "sensor", "--ring", str(self.ring), "--store", str(self.store)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.lines: list[str] = []
        self.packets = 0
        self.max_lag = 0
        self.closes: list[float] = []
        self.rss: list[tuple[float, int, int]] = []   # (seconds, packets ingested, rss bytes)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            m = _STATUS.search(line)
            if m:
                self.packets = int(m[1])
                self.max_lag = max(self.max_lag, int(m[2]))
            m = _CLOSED.search(line)
            if m:
                self.closes.append(float(m[1]))

    def sample_rss(self, every: float, stop: threading.Event) -> None:
        import psutil

        t0 = time.monotonic()
        p = psutil.Process(self.proc.pid)
        while not stop.wait(every):
            try:
                self.rss.append((time.monotonic() - t0, self.packets, p.memory_info().rss))
            except psutil.Error:
                return

    def wait(self, timeout: float) -> dict:
        rc = self.proc.wait(timeout)
        self._t.join(5)
        import sqlite3

        con = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True)
        ingested = con.execute("SELECT COALESCE(SUM(packets), 0) FROM captures").fetchone()[0]
        row = con.execute("SELECT value FROM state WHERE name = 'ring.follower'").fetchone()
        con.close()
        st = json.loads(bytes(row[0])) if row else {}
        return {"rc": rc, "ingested": int(ingested), "missed_files": int(st.get("missed", 0)),
                "max_lag_bytes": self.max_lag, "runs": len(self.closes),
                "max_close_s": max(self.closes, default=0.0),
                "errors": [ln for ln in self.lines if " ERROR " in ln][-3:]}


def run_rate(rate: float, packets: int, args, work: Path, rss_every: float | None = None) -> dict:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    s = _Sensor(work)
    time.sleep(1.0)
    stop = threading.Event()
    sampler = None
    if rss_every:
        sampler = threading.Thread(target=s.sample_rss, args=(rss_every, stop), daemon=True)
        sampler.start()
    try:
        w = subprocess.run([*_me(), "--role", "writer", "--ring", str(s.ring), "--rate", str(rate),
                            "--packets", str(packets), "--ring-size-mb", str(args.ring_size_mb),
                            "--ring-files", str(args.ring_files), "--template", str(args.template)],
                           capture_output=True, text=True, cwd=ROOT, timeout=args.timeout)
    finally:
        (s.ring / ALIVE).unlink(missing_ok=True)
    if w.returncode != 0:
        s.proc.kill()
        raise SystemExit(f"writer failed: {w.stderr.strip().splitlines()[-1:]}")
    wrote = json.loads(w.stdout.strip().splitlines()[-1])
    res = s.wait(args.timeout)
    stop.set()
    res.update(target=rate, written=wrote["written"], write_rate=round(wrote["rate"]), files=wrote["files"])
    res["ok"] = res["rc"] == 0 and res["missed_files"] == 0 and res["ingested"] == res["written"]
    res["rss"] = s.rss
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--role", choices=("bench", "writer", "sensor"), default="bench", help=argparse.SUPPRESS)
    ap.add_argument("--ring", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--packets", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--rates", default="25000,50000,75000,100000,125000,150000,200000",
                    help="packets/s to try, rising (stops at the first that drops)")
    ap.add_argument("--seconds", type=float, default=30.0, help="duration of each rate step")
    ap.add_argument("--ring-size-mb", type=float, default=32.0)
    ap.add_argument("--ring-files", type=int, default=8)
    ap.add_argument("--template", type=int, default=TEMPLATE_PACKETS, help="distinct packets cycled")
    ap.add_argument("--long-packets", type=int, default=10_000_000, help="0: no long run")
    ap.add_argument("--long-rate", type=float, default=0.0, help="default: the highest sustained rate")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--json", type=Path, help="write the figures as JSON")
    ap.add_argument("--busy-neighbour", action="store_true",
                    help="keep a process spinning beside the sensor for the whole run (a shared machine)")
    a = ap.parse_args(argv)
    if a.role == "writer":
        print(json.dumps(writer(a.ring, a.rate, a.packets, a.ring_size_mb, a.ring_files, a.template)))
        return 0
    if a.role == "sensor":
        return sensor_main(a.store, a.ring)

    print(f"sensor load: ring of {a.ring_files} x {a.ring_size_mb} MB, {a.seconds:.0f} s per rate, "
          f"{os.cpu_count()} cores" + (", a busy neighbour spinning beside it" if a.busy_neighbour else ""))
    work = Path(tempfile.mkdtemp(prefix="plantwatch-bench-sensor-"))
    figures: dict = {"steps": [], "sustained_pps": 0, "budget_pps": 50_000, "busy_neighbour": a.busy_neighbour}
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if a.busy_neighbour else None
    try:
        print(f"{'target/s':>9} {'written/s':>10} {'written':>10} {'ingested':>10} {'missed':>6} "
              f"{'max lag':>10} {'runs':>4} {'close':>6}  verdict")
        for rate in (float(r) for r in a.rates.split(",") if r.strip()):
            r = run_rate(rate, int(rate * a.seconds), a, work / "step")
            r.pop("rss")
            figures["steps"].append(r)
            print(f"{rate:>9,.0f} {r['write_rate']:>10,} {r['written']:>10,} {r['ingested']:>10,} "
                  f"{r['missed_files']:>6} {r['max_lag_bytes'] / 1e6:>8.1f}MB {r['runs']:>4} "
                  f"{r['max_close_s']:>5.1f}s  {'ok' if r['ok'] else 'DROPS'}"
                  + (f"  {r['errors']}" if r["errors"] else ""))
            if not r["ok"]:
                break
            figures["sustained_pps"] = max(figures["sustained_pps"], r["write_rate"])
        sus = figures["sustained_pps"]
        verdict = "ok" if sus >= figures["budget_pps"] else "MISSED"
        print(f"highest sustained rate with zero pipeline drops: {sus:,} packets/s "
              f"(budget 50,000: {verdict})")
        if a.long_packets:
            rate = a.long_rate or max(sus * 0.8, 5000)
            print(f"long run: {a.long_packets:,} packets at {rate:,.0f}/s, sensor RSS sampled")
            r = run_rate(rate, a.long_packets, a, work / "long", rss_every=2.0)
            rss = r.pop("rss")
            figures["long"] = {**r, "rss": rss}
            marks = [rss[int(i * (len(rss) - 1) / 10)] for i in range(11)] if rss else []
            for t, n, b in marks:
                print(f"  {t:7.0f} s  {n:>12,} packets  RSS {b / 2**20:7.1f} MB")
            if len(rss) >= 5:
                late = [b for _, n, b in rss if n >= 0.2 * a.long_packets]
                if late:
                    print(f"  RSS from 20% to 100% of the run: {min(late) / 2**20:.1f} .. "
                          f"{max(late) / 2**20:.1f} MB; {'ok' if r['ok'] else 'DROPS'}; "
                          f"ingested {r['ingested']:,} of {r['written']:,}; {r['missed_files']} files "
                          f"missed; max lag {r['max_lag_bytes'] / 1e6:.0f} MB; longest run close "
                          f"{r['max_close_s']:.1f} s")
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        a.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
