"""The plantwatch benchmark (`make bench`): end-to-end throughput, per-stage throughput, peak
memory, and tshark on the same capture in the same run, against the budgets of DESIGN.md.

    .venv/bin/python bench/run.py                       # 1,000,000 packets
    .venv/bin/python bench/run.py --packets 10000000    # the memory budget's size
    .venv/bin/python bench/run.py --json figures.json   # also write the figures as JSON

It is a report: the exit code is 0 when a budget is missed (the table says MISSED); it is 1 only
when something could not run (no plantwatch CLI, a crash, tshark failing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core` and `bench` importable
    sys.path.insert(0, str(ROOT))

from bench import mixed  # noqa: E402

BUDGET_PPS = 300_000
BUDGET_RATIO = 15.0
BUDGET_RSS = 1_000_000_000  # bytes, for a 10,000,000-packet capture
RSS_PACKETS = 10_000_000
TSHARK_AUTO_MAX = 2_000_000

TSHARK_FIELDS = ("frame.number", "frame.time_epoch", "eth.src", "eth.dst", "ip.src", "ip.dst",
                 "ip.proto", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "tcp.flags",
                 "modbus.func_code", "s7comm.param.func", "tls.handshake.extensions_server_name",
                 "dns.qry.name")

# One core: the CPU affinity (taskset) and the thread pools that would otherwise size themselves
# to the machine.
ONE_CORE_ENV = {"POLARS_MAX_THREADS": "1", "RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}
CORE = 0


# --------------------------------------------------------------------------- running children


def _pin(cmd: list[str]) -> tuple[list[str], object]:
    """The command pinned to one CPU: through taskset when present, else sched_setaffinity."""
    taskset = shutil.which("taskset")
    if taskset:
        return [taskset, "-c", str(CORE), *cmd], None
    return cmd, (lambda: os.sched_setaffinity(0, {CORE}))


def run_child(cmd: list[str], *, one_core: bool, stdout=subprocess.DEVNULL,
              timeout: float | None = None) -> dict:
    """Run `cmd` to completion; its wall time, exit status and peak RSS (its own, from wait4,
    so neither this process nor other children count)."""
    env = dict(os.environ)
    preexec = None
    if one_core:
        env.update(ONE_CORE_ENV)
        cmd, preexec = _pin(cmd)
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=err, env=env, preexec_fn=preexec)
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read()[-3000:].decode("utf-8", "replace")
    return {"cmd": " ".join(cmd), "seconds": wall, "cpu_seconds": ru.ru_utime + ru.ru_stime,
            "returncode": proc.returncode, "peak_rss_bytes": ru.ru_maxrss * 1024, "stderr_tail": tail,
            "timed_out": deadline is not None and wall > timeout}


def compile_sources() -> None:
    """Write the project's bytecode, as installing a package does: an editable checkout run with
    PYTHONDONTWRITEBYTECODE set would otherwise compile ~140 modules again at every start
    (about 0.1 CPU s per run, timed as start-up although no installed copy pays it)."""
    import compileall

    for pkg in ("core", "tui", "plantwatch"):
        if (ROOT / pkg).is_dir():
            compileall.compile_dir(str(ROOT / pkg), quiet=1)


def plantwatch_cmd() -> list[str] | None:
    """How to start the CLI: the venv's console script, else the module, else None."""
    exe = Path(sys.executable).parent / "plantwatch"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("plantwatch")
    if found:
        return [found]
    if (ROOT / "tui" / "cli.py").exists():
        return [sys.executable, "-c", "import sys; from plantwatch.tui.cli import main; sys.exit(main())"]
    return None


def run_plantwatch(base: list[str], capture: Path, one_core: bool, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="plantwatch-bench-") as tmp:
        store = Path(tmp) / "bench.sqlite"
        cmd = [*base, "analyze", str(capture), "--store", str(store), "--json"]
        res = run_child(cmd, one_core=one_core, timeout=timeout)
        res["store_bytes"] = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file())
    return res


def profile_plantwatch(base: list[str], capture: Path, timeout: float, top: int = 20) -> str:
    """One extra one-core run under cProfile; the functions with the most own time."""
    import io
    import pstats

    script = base[0] if len(base) == 1 else None
    if script is None:
        return "(profile needs the plantwatch console script)"
    with tempfile.TemporaryDirectory(prefix="plantwatch-bench-") as tmp:
        prof = Path(tmp) / "run.prof"
        cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), script, "analyze", str(capture),
               "--store", str(Path(tmp) / "bench.sqlite"), "--json"]
        res = run_child(cmd, one_core=True, timeout=timeout)
        if res["returncode"] != 0 or not prof.exists():
            return f"(profiled run failed: exit {res['returncode']})\n{res['stderr_tail']}"
        out = io.StringIO()
        stats = pstats.Stats(str(prof), stream=out)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
    text = out.getvalue()
    return text[text.find("   ncalls"):] if "   ncalls" in text else text


def run_tshark(capture: Path, one_core: bool, timeout: float) -> dict:
    exe = shutil.which("tshark")
    if exe is None:
        return {"error": "tshark not installed"}
    cmd = [exe, "-n", "-r", str(capture), "-T", "fields"]
    for fld in TSHARK_FIELDS:
        cmd += ["-e", fld]
    return run_child(cmd, one_core=one_core, timeout=timeout)


# --------------------------------------------------------------------------- stages (in a child)


def stages(capture: Path) -> dict:
    """Stream the capture through read, decode, sessions and devices in this process, timing
    each stage separately: the CPU time spent inside its calls, summed over batches (CPU time,
    not wall time, so the breakdown holds on a shared machine)."""
    from plantwatch.core.capture.files import read_batches

    try:
        from plantwatch.core.decode import Decoder
    except ImportError:
        Decoder = None  # noqa: N806
    try:
        from plantwatch.core.flows.sessions import SessionTracker
    except ImportError:
        SessionTracker = None  # noqa: N806
    try:
        from plantwatch.core.inventory.devices import DeviceInventory
    except ImportError:
        DeviceInventory = None  # noqa: N806

    pc = time.process_time
    t = {"read": 0.0, "decode": 0.0, "sessions": 0.0, "devices": 0.0}
    app_t: dict[str, float] = {}
    part_t: dict[str, float] = {}
    dec = None
    if Decoder is not None:
        try:  # time each application module inside decode through timed stand-ins
            from plantwatch.core.decode import APP_MODULES
            dec = Decoder(modules=tuple(_timed_module(m, app_t) for m in APP_MODULES))
        except (ImportError, TypeError):
            dec = Decoder()
        import plantwatch.core.decode as decode_pkg
        for fn in DECODE_PARTS:  # and the decoder's own steps, where they exist
            if callable(getattr(decode_pkg, fn, None)):
                part_t[fn] = 0.0
                setattr(decode_pkg, fn, _timed(getattr(decode_pkg, fn), part_t, fn))
    tracker = SessionTracker() if (SessionTracker and dec) else None
    inv = DeviceInventory() if (DeviceInventory and dec) else None
    packets = ops = sessions = batches = 0
    it = iter(read_batches([capture]))
    t_all, cpu_all = time.perf_counter(), pc()
    while True:
        t0 = pc()
        batch = next(it, None)
        t1 = pc()
        t["read"] += t1 - t0
        if batch is None:
            break
        batches += 1
        packets += len(batch)
        if dec is None:
            continue
        d = dec.decode(batch)
        t2 = pc()
        t["decode"] += t2 - t1
        ops += d.ops.height
        ended = None
        if tracker is not None:
            ended = tracker.update(d.packets, d.ops)
            sessions += ended.height
        t3 = pc()
        t["sessions"] += t3 - t2
        if inv is not None:
            inv.update(d.packets, d.ops, sessions=ended)
        t["devices"] += pc() - t3
    devices = None
    if tracker is not None:
        t0 = pc()
        rest = tracker.flush()
        sessions += rest.height
        t1 = pc()
        t["sessions"] += t1 - t0
        if inv is not None:
            inv.add_sessions(rest)
            devices = inv.devices().height
            t["devices"] += pc() - t1
    total, cpu = time.perf_counter() - t_all, pc() - cpu_all
    present = {"read": True, "decode": dec is not None, "sessions": tracker is not None,
               "devices": inv is not None}
    return {"packets": packets, "batches": batches, "ops": ops, "sessions": sessions,
            "devices": devices, "seconds": {k: v for k, v in t.items() if present[k]},
            "decode_app_seconds": dict(sorted(app_t.items(), key=lambda kv: -kv[1])),
            "decode_part_seconds": part_t,
            "total_seconds": total, "total_cpu_seconds": cpu,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


# Steps of plantwatch.core.decode.Decoder.decode timed in the stage run (module-level functions, patched
# in that child process only; a renamed step simply drops out of the breakdown).
DECODE_PARTS = ("decode_layers", "_layer_columns", "_view", "_scatter", "_ops_frame")


def _timed(fn, acc: dict[str, float], key: str):
    def call(*args, **kw):
        t0 = time.process_time()
        try:
            return fn(*args, **kw)
        finally:
            acc[key] += time.process_time() - t0
    return call


def _timed_module(mod, acc: dict[str, float]) -> SimpleNamespace:
    """A stand-in for an application decoder module whose select/decode add their time to
    acc[short name]; the decoder keys its per-module state on __name__, which is kept."""
    name = mod.__name__.rsplit(".", 1)[-1]
    acc.setdefault(name, 0.0)
    return SimpleNamespace(__name__=mod.__name__, select=_timed(mod.select, acc, name),
                           decode=_timed(mod.decode, acc, name))


def run_stages(capture: Path, timeout: float) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        res = run_child([sys.executable, str(Path(__file__).resolve()), "--stages-only",
                         str(capture), "--stages-out", out.name], one_core=True, timeout=timeout)
        if res["returncode"] != 0:
            return {"error": f"stage run failed (exit {res['returncode']})", "stderr_tail": res["stderr_tail"]}
        return json.loads(Path(out.name).read_text())


# --------------------------------------------------------------------------- report


def _pps(packets: int, seconds: float | None) -> float | None:
    return packets / seconds if seconds else None


def _fmt(x: float | None, unit: str = "") -> str:
    return "-" if x is None else f"{x:,.0f}{unit}"


def _mb(b: int | None) -> str:
    return "-" if b is None else f"{b / 1e6:,.0f} MB"


def _ok(ok: bool | None) -> str:
    return "n/a" if ok is None else ("ok" if ok else "MISSED")


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        import numpy
        import polars
        info["polars"], info["numpy"] = polars.__version__, numpy.__version__
    except ImportError:
        pass
    if shutil.which("tshark"):
        v = subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout
        info["tshark"] = v.splitlines()[0] if v else "?"
    return info


def verdicts(fig: dict) -> dict:
    """Budget verdicts on wall time (the budget's figure), with the CPU-time figures beside."""
    run = fig.get("plantwatch_one_core") or {}
    tsh_run = fig.get("tshark") or {}
    n = fig["packets"]
    ok_run = not run.get("error") and run.get("seconds")
    one = run.get("packets_per_s") if ok_run else None
    one_cpu = _pps(n, run.get("cpu_seconds")) if ok_run else None
    tsh = tsh_run.get("packets_per_s") if not tsh_run.get("error") else None
    tsh_cpu = _pps(n, tsh_run.get("cpu_seconds")) if tsh else None
    rss = run.get("peak_rss_bytes") if ok_run else None  # a failed run proves nothing
    ratio = one / tsh if (one and tsh) else None
    ratio_cpu = one_cpu / tsh_cpu if (one_cpu and tsh_cpu) else None
    big = n >= RSS_PACKETS
    fig["ratio_vs_tshark"] = ratio
    return {
        "throughput": {"figure": one, "cpu_figure": one_cpu, "budget": BUDGET_PPS,
                       "ok": None if one is None else one >= BUDGET_PPS},
        "vs_tshark": {"figure": ratio, "cpu_figure": ratio_cpu, "budget": BUDGET_RATIO,
                      "ok": None if ratio is None else ratio >= BUDGET_RATIO},
        "peak_rss": {"figure": rss, "budget": BUDGET_RSS,
                     "ok": None if (rss is None or not big) else rss < BUDGET_RSS,
                     "note": "" if big else f"budget applies to --packets {RSS_PACKETS}"},
    }


def _print_decode_parts(n: int, st: dict) -> None:
    """Decode split into its own steps and each application module's select+decode."""
    secs = st["seconds"]
    apps = st.get("decode_app_seconds") or {}
    parts = st.get("decode_part_seconds") or {}
    if "decode" not in secs or not (apps or parts):
        return
    rows = [(f"{k}()", v) for k, v in parts.items()]
    shown = [(k, v) for k, v in apps.items() if v >= 0.02 * secs["decode"]]
    rows += [(f"app module {k}", v) for k, v in shown]
    others = sum(apps.values()) - sum(v for _, v in shown)
    if others > 0:
        rows.append(("other app modules", others))
    rest = secs["decode"] - sum(parts.values()) - sum(apps.values())
    rows.append(("the rest (DataFrame assembly...)", rest))
    for k, v in rows:
        print(f"    {k:<40}{v:>10.2f}{_fmt(_pps(n, v)):>14}")


def print_report(fig: dict) -> None:
    n = fig["packets"]
    cap = fig["capture"]
    m = fig["machine"]
    print()
    gen = cap.get("generator")
    what = f"{gen.get('plant', 'mixed')} plant capture" if gen else "capture"
    print(f"plantwatch benchmark: {n:,} packets, {what} ({_mb(cap['file_bytes'])}, "
          f"{cap['packet_time_s']:,.0f} s of packet time)")
    print(f"  {cap['path']}")
    print(f"  machine: {m['cores']} cores ({m['cpu']}), load {m['load_before']} before, "
          f"{m.get('load_after')} after; polars {m.get('polars')}")
    if max(m["load_before"][0], (m.get("load_after") or [0])[0]) > (m["cores"] or 1) * 0.75:
        print("  NOTE: the machine was busy; every figure below is pessimistic")
    st = fig.get("stages")
    print()
    print(f"{'stage (one core, CPU time)':<44}{'CPU s':>10}{'pkts/CPU s':>14}")
    if st is None:
        print("  (skipped)")
    elif "error" in st:
        print(f"  FAILED: {st['error']}\n{st.get('stderr_tail', '')}")
    else:
        secs = st["seconds"]
        for name, mod in (("read", "plantwatch.core.capture.files"), ("decode", "plantwatch.core.decode"),
                          ("sessions", "plantwatch.core.flows.sessions"), ("devices", "plantwatch.core.inventory.devices")):
            if name in secs:
                print(f"  {name + ' (' + mod + ')':<42}{secs[name]:>10.2f}{_fmt(_pps(n, secs[name])):>14}")
            else:
                print(f"  {name + ' (' + mod + ')':<42}{'absent':>10}")
            if name == "decode":
                _print_decode_parts(n, st)
        sd = secs.get("sessions", 0) + secs.get("devices", 0)
        if sd:
            print(f"  {'sessions+devices':<42}{sd:>10.2f}{_fmt(_pps(n, sd)):>14}")
        cpu = st.get("total_cpu_seconds") or sum(secs.values())
        print(f"  {'all stages':<42}{cpu:>10.2f}{_fmt(_pps(n, cpu)):>14}"
              f"   (wall {st['total_seconds']:.2f} s: {_fmt(_pps(n, st['total_seconds']))} packets/s)")
        print(f"  ({st['batches']} batches, {st['ops']:,} ICS operations, {st['sessions']:,} sessions, "
              f"{st['devices'] if st['devices'] is not None else '-'} devices; "
              f"peak RSS {_mb(st['peak_rss_bytes'])})")
    print()
    print(f"{'end to end':<44}{'seconds':>10}{'packets/s':>14}{'peak RSS':>12}{'CPU s':>9}{'pkts/CPU s':>12}")
    for key, label in (("plantwatch_one_core", "plantwatch analyze, one core"),
                       ("plantwatch_default", f"plantwatch analyze, default ({m['cores']} cores)"),
                       ("tshark", f"tshark -T fields ({len(TSHARK_FIELDS)} fields), one core")):
        r = fig.get(key)
        if r is None:
            continue
        if r.get("error"):
            print(f"  {label:<42}FAILED: {r['error']}")
            if r.get("stderr_tail"):
                print("    " + r["stderr_tail"].strip().replace("\n", "\n    "))
            continue
        print(f"  {label:<42}{r['seconds']:>10.2f}{_fmt(r['packets_per_s']):>14}{_mb(r['peak_rss_bytes']):>12}"
              f"{r['cpu_seconds']:>9.2f}{_fmt(_pps(n, r['cpu_seconds'])):>12}")
    if fig.get("tshark_skipped"):
        print(f"  tshark: {fig['tshark_skipped']}")
    one = fig.get("plantwatch_one_core") or {}
    if st and "error" not in st and one.get("packets_per_s") and st.get("total_cpu_seconds"):
        rest = one["cpu_seconds"] - st["total_cpu_seconds"]
        print(f"  (one-core run's CPU time minus the stages': {rest:.2f} s of start-up, store, models,"
              " report)")
    print("  packets/s is wall time, the budget's figure; pkts/CPU s is what the process itself used,\n"
          "  closer to an idle core's figure when the machine is shared")
    v = fig["verdicts"]
    print()
    print(f"{'budget':<44}{'figure':>16}  {'verdict':<8}{'by CPU time':>14}")
    t = v["throughput"]
    print(f"  {'>= 300,000 packets/s end to end, one core':<42}{_fmt(t['figure']):>16}  "
          f"{_ok(t['ok']):<8}{_fmt(t['cpu_figure']):>14}")
    r = v["vs_tshark"]
    fr = "-" if r["figure"] is None else f"{r['figure']:.1f}x"
    fc = "-" if r["cpu_figure"] is None else f"{r['cpu_figure']:.1f}x"
    print(f"  {'>= 15x tshark -T fields, same run':<42}{fr:>16}  {_ok(r['ok']):<8}{fc:>14}")
    s = v["peak_rss"]
    note = f" ({s['note']})" if s["note"] else ""
    print(f"  {'peak RSS < 1 GB at 10,000,000 packets':<42}{_mb(s['figure']):>16}  {_ok(s['ok'])}{note}")
    print()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="plantwatch benchmark against its budgets and tshark")
    ap.add_argument("--packets", type=int, default=mixed.DEFAULT_PACKETS)
    ap.add_argument("--seed", type=int, default=mixed.DEFAULT_SEED)
    ap.add_argument("--capture", type=Path, help="benchmark this file instead of the generated one")
    ap.add_argument("--plant", choices=sorted(mixed.PLANTS), default="mixed",
                    help="which generated capture: the mixed plant (the budgets' capture) or the "
                         "office-heavy second one (many DNS names, many short sessions)")
    ap.add_argument("--regenerate", action="store_true", help="regenerate the cached capture")
    ap.add_argument("--json", type=Path, metavar="PATH", help="write the figures as JSON ('-': stdout)")
    ap.add_argument("--runs", choices=("both", "one-core", "default"), default="both",
                    help="which plantwatch runs: one core (the budget), default threading, or both")
    ap.add_argument("--profile", action="store_true",
                    help="also run plantwatch once under cProfile and print the top functions")
    ap.add_argument("--no-stages", action="store_true", help="skip the per-stage breakdown")
    ap.add_argument("--tshark", choices=("auto", "yes", "no"), default="auto",
                    help=f"run tshark: auto = only up to {TSHARK_AUTO_MAX:,} packets (it keeps "
                         "about 1 KB of state per packet: ~10 GB at 10M)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run stages, plantwatch and tshark K times each and keep the fastest "
                         "(noisy machines)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per child run")
    ap.add_argument("--stages-only", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--stages-out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    a.repeat = max(1, a.repeat)
    if a.stages_only is not None:  # the child of run_stages
        a.stages_out.write_text(json.dumps(stages(a.stages_only)))
        return 0

    if a.capture is not None:
        capture = a.capture
        gen = None
        from plantwatch.core.capture.files import read_batches
        n, t_first, t_last = 0, None, 0
        for b in read_batches([capture]):
            n += len(b)
            if len(b):
                t_first = int(b.ts.min()) if t_first is None else min(t_first, int(b.ts.min()))
                t_last = max(t_last, int(b.ts.max()))
        t_first = t_first or 0
    else:
        capture, gen = mixed.ensure(a.packets, a.seed, regenerate=a.regenerate,
                                    log=lambda s: print(s, flush=True), plant=a.plant)
        n, t_first, t_last = gen["packets"], gen["first_ts_ns"], gen["last_ts_ns"]
    fig: dict = {
        "packets": n, "machine": machine(),
        "capture": {"path": str(capture), "file_bytes": capture.stat().st_size,
                    "packet_time_s": (t_last - t_first) / 1e9, "generator": gen},
    }
    failed = False

    if not a.no_stages:
        print("stages ...", flush=True)
        tries = [run_stages(capture, a.timeout) for _ in range(a.repeat)]
        good = [x for x in tries if "error" not in x]
        fig["stages"] = min(good, key=lambda x: x["total_cpu_seconds"]) if good else tries[0]
        if len(good) > 1:
            fig["stages"]["all_total_seconds"] = [round(x["total_seconds"], 3) for x in good]
        failed |= "error" in fig["stages"]

    base = plantwatch_cmd()
    compile_sources()
    runs = {"both": (True, False), "one-core": (True,), "default": (False,)}[a.runs]
    for one_core in runs:
        key = "plantwatch_one_core" if one_core else "plantwatch_default"
        if base is None:
            fig[key] = {"error": "no plantwatch CLI (tui/cli.py / .venv/bin/plantwatch) yet"}
            failed = True
            continue
        print(f"plantwatch analyze ({'one core' if one_core else 'default'}) ...", flush=True)
        tries = [run_plantwatch(base, capture, one_core, a.timeout) for _ in range(a.repeat)]
        good = [x for x in tries if x["returncode"] == 0]
        r = min(good, key=lambda x: x["seconds"]) if good else tries[-1]
        r["all_seconds"] = [round(x["seconds"], 3) for x in tries]
        r["peak_rss_bytes"] = max(x["peak_rss_bytes"] for x in tries)  # the worst, for the budget
        r["packets_per_s"] = _pps(n, r["seconds"])
        if r["returncode"] != 0:
            r["error"] = "timed out" if r["timed_out"] else f"exit status {r['returncode']}"
            r["packets_per_s"] = None
            failed = True
        fig[key] = r

    if a.profile and base is not None:
        print("plantwatch analyze under cProfile (one core) ...", flush=True)
        fig["profile"] = profile_plantwatch(base, capture, a.timeout)

    if a.tshark == "yes" or (a.tshark == "auto" and n <= TSHARK_AUTO_MAX):
        print("tshark ...", flush=True)
        tries = [run_tshark(capture, True, a.timeout) for _ in range(a.repeat)]
        good = [x for x in tries if x.get("returncode") == 0]
        r = min(good, key=lambda x: x["seconds"]) if good else tries[-1]
        if "error" not in r:
            r["all_seconds"] = [round(x["seconds"], 3) for x in tries]
        if "error" not in r:
            r["packets_per_s"] = _pps(n, r["seconds"])
            if r["returncode"] != 0:
                r["error"] = f"exit status {r['returncode']}"
                r["packets_per_s"] = None
                failed = True
        fig["tshark"] = r
    else:
        fig["tshark_skipped"] = ("not run (--tshark no)" if a.tshark == "no" else
                                 f"not run at {n:,} packets (--tshark yes forces it; it needs "
                                 "about 1 KB of memory per packet)")

    fig["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    fig["verdicts"] = verdicts(fig)
    print_report(fig)
    if fig.get("profile"):
        print("cProfile of one plantwatch run (one core; profiling slows it down):")
        print(fig["profile"])
    if a.json is not None:
        text = json.dumps(fig, indent=1, default=str)
        if str(a.json) == "-":
            print(text)
        else:
            a.json.write_text(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
