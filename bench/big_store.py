"""A big store, quickly: N devices and M sessions written straight through the store's writers.

`python bench/big_store.py --devices 200000 --sessions 2000000 --out big.sqlite` writes, with one
fixed seed (numpy's default_rng), M sessions between N internal devices in 10.0.0.0/8 (each
client talks to PEERS servers, one service each; about 8 % of the sessions failed, a seventh
Modbus reads), then feeds them, chunk by chunk, to the pipeline's own inventory and detector
(learn mode) and stores what a sensor that had seen them would have left: sessions and their
operations, the devices table, the baseline (state, baseline devices, meta) and the inventory's
state, in one bulk transaction (Store.bulk, Store.upsert), without reading packets. An address
no session drew is no device (about 20 of 200,000).

Then it runs `plantwatch analyze CAPTURE --store <copy of the big store>` (the summary, and
`--json`) and `plantwatch report --html` on the big store, under /usr/bin/time -v, and prints
peak RSS, CPU seconds and wall time:
`make bench` runs it at 1M and 2M sessions with 200k devices (issue 17 measured 2.2 GB and 4.4 GB
before the report stopped reading whole tables).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from plantwatch.core.capture.refs import pack_refs
from plantwatch.core.decode.schema import CLS_READ
from plantwatch.core.detection.baseline import Baseline
from plantwatch.core.detection.detector import Detector
from plantwatch.core.flows.schema import SESSIONS
from plantwatch.core.flows.sessions import session_ops
from plantwatch.core.inventory.devices import DeviceInventory
from plantwatch.core.inventory.edges import endpoints_from_sessions
from plantwatch.core.pipeline import devices_out
from plantwatch.core.store import state as pipeline_state
from plantwatch.core.store.database import Store
from plantwatch.core.store.writers import StoreSink

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
VERSION = 3
PEERS = 2                      # servers each client talks to
CHUNK = 200_000
T0 = 1_735_689_600 * 10**9    # 2025-01-01T00:00:00Z, packet time of the first session
SPAN_NS = 7 * 86_400 * 10**9  # sessions spread over a week
V4_LO_BASE = 0xFFFF << 32
NET = 10 << 24

# (server port, app code as decode.schema numbers it, proto): a plant's usual mix
_SERVICES = [(502, 0, 6), (102, 0, 6), (443, 0, 6), (53, 0, 17), (445, 0, 6), (3389, 0, 6), (20000, 0, 6)]
_STATES_TCP = ["closed", "established", "reset", "refused", "unanswered"]
_STATE_P = [0.55, 0.3, 0.07, 0.04, 0.04]


def _address(n: np.ndarray) -> np.ndarray:
    """Device index -> IPv4 10.x.y.z (lo half, unsigned)."""
    return (V4_LO_BASE | (NET + 1 + n)).astype(np.uint64)


def sessions_frame(start: int, m: int, n_dev: int, rng: np.random.Generator, app_of_502: int) -> pl.DataFrame:
    """M sessions (SESSIONS, unsigned addresses), each between a client and one of its PEERS
    servers (a fixed service per pair): a plant's pattern repeats, so the distinct edges
    stop growing once every pair was seen, whatever the number of sessions."""
    sid = np.arange(start, start + m, dtype=np.int64) * 2654435761 % (1 << 62) + 1
    client = rng.integers(0, n_dev, m)
    k = rng.integers(0, PEERS, m)
    server = (client * 7919 + 1 + k * 104729) % n_dev
    server = np.where(server == client, (server + 1) % n_dev, server)
    svc = (client * 31 + k * 17) % len(_SERVICES)
    port = np.array([s[0] for s in _SERVICES], dtype=np.int32)[svc]
    proto = np.array([s[2] for s in _SERVICES], dtype=np.uint8)[svc]
    state = np.array(_STATES_TCP)[rng.choice(len(_STATES_TCP), m, p=_STATE_P)]
    state = np.where((proto == 17) & (state != "unanswered"), "answered", state)
    first = T0 + np.sort(rng.integers(0, SPAN_NS, m))
    pk = rng.integers(1, 40, m)
    frame = np.arange(start, start + m, dtype=np.int64) + 1
    zeros64 = np.zeros(m, dtype=np.int64)
    modbus = port == 502
    cols: dict[str, object] = {c: pl.Series(c, [None] * m, dtype=dt) for c, dt in SESSIONS.items()}
    cols.update({
        "session_id": sid, "proto": proto, "state": state,
        "app": np.where(modbus, app_of_502, 0).astype(np.uint8),
        "client_hi": np.zeros(m, dtype=np.uint64), "client_lo": _address(client),
        "client_port": rng.integers(1024, 65535, m).astype(np.int32),
        "server_hi": np.zeros(m, dtype=np.uint64), "server_lo": _address(server), "server_port": port,
        "client_mac": (0x001B1B000000 + client).astype(np.uint64),
        "server_mac": (0x001B1B000000 + server).astype(np.uint64),
        "vlan": np.zeros(m, dtype=np.int32), "first_ts": first, "last_ts": first + pk * 1_000_000,
        "pkts_c2s": pk, "pkts_s2c": pk - 1, "bytes_c2s": pk * 80, "bytes_s2c": (pk - 1) * 120,
        "payload_c2s": pk * 20, "payload_s2c": (pk - 1) * 60,
        "first_file": np.ones(m, dtype=np.int32), "first_frame": frame,
        "last_file": np.ones(m, dtype=np.int32), "last_frame": frame,
        "syn_count": (proto == 6).astype(np.int32), "handshake": np.isin(state, ["closed", "established", "reset"]),
        "midstream": np.zeros(m, dtype=bool), "rst_client": zeros64.astype(np.int32),
        "rst_server": (state == "refused").astype(np.int32), "icmp_errors": zeros64.astype(np.int32),
        "to_group": np.zeros(m, dtype=bool), "n_ops": np.where(modbus, pk, 0),
    })
    out = pl.DataFrame({k: (v if isinstance(v, pl.Series) else pl.Series(k, v)) for k, v in cols.items()})
    # Modbus reads (function 3) from the client on the sessions to port 502, one kind each
    op = pl.struct(pl.lit(app_of_502, pl.UInt8).alias("app"), pl.lit(3, pl.Int32).alias("code"),
                   pl.lit(CLS_READ, pl.UInt8).alias("cls"), pl.lit("Read Holding Registers").alias("name"),
                   pl.lit(True).alias("from_client"), pl.lit(True).alias("requests"),
                   pl.col("n_ops").alias("count"), pl.lit(0, pl.Int64).alias("exceptions"),
                   pl.Series(pack_refs(1, frame)).alias("first_ref"))
    ops = pl.when(pl.col("server_port") == 502).then(pl.concat_list(op)).otherwise(None)
    return out.with_columns(ops.cast(SESSIONS["ops"]).alias("ops")).select(list(SESSIONS))


def _signed_for_store(frame: pl.DataFrame) -> pl.DataFrame:
    """The store's conventions (core/pipeline/ingest.py): unsigned 64-bit as signed, lists as JSON."""
    return frame.with_columns(
        [pl.col(c).reinterpret(signed=True) for c, dt in frame.schema.items() if dt == pl.UInt64]
        + [pl.col(c).map_elements(lambda v: json.dumps(v.to_list()), return_dtype=pl.String)
           for c, dt in frame.schema.items() if isinstance(dt, pl.List)])


def write(path: Path, n_dev: int, m_sess: int, seed: int = 17) -> None:
    """Sessions and their operations, then what the pipeline keeps about them: the inventory
    (its state and the devices table) and the baseline learned from them (state, baseline
    devices and meta), through the pipeline's own classes, as a sensor that saw those sessions
    would have left the store."""
    from plantwatch.core.decode.schema import APP_NAMES

    rng = np.random.default_rng(seed)
    modbus = next(k for k, v in APP_NAMES.items() if v == "modbus")
    inventory = DeviceInventory()
    with Store(path) as store, store.bulk():
        detector = Detector(Baseline(), StoreSink(store), mode="learn")
        for start in range(0, m_sess, CHUNK):
            chunk = sessions_frame(start, min(CHUNK, m_sess - start), n_dev, rng, modbus)
            inventory.add_endpoints(endpoints_from_sessions(chunk))
            inventory.update(pl.DataFrame(), None, chunk)
            detector.update(None, None, chunk)
            store.upsert("sessions", _signed_for_store(chunk.drop("ops")))
            store.upsert("session_ops", _signed_for_store(session_ops(chunk)))
        devices = inventory.devices()
        store.upsert("devices", _signed_for_store(devices))
        detector.finish(None, devices)
        pipeline_state.save(store, "devices", inventory)
        devices_out.mark(store, inventory)   # the devices table is the state's, as after a run


def cached(n_dev: int, m_sess: int, seed: int = 17, regenerate: bool = False) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"big-store-v{VERSION}-seed{seed}-{n_dev}d-{m_sess}s.sqlite"
    if regenerate or not path.exists():
        tmp = path.with_suffix(".tmp")
        for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-lock")):
            p.unlink(missing_ok=True)
        t = time.perf_counter()
        write(tmp, n_dev, m_sess, seed)
        tmp.rename(path)
        Path(f"{tmp}-lock").unlink(missing_ok=True)
        print(f"wrote {path.name}: {n_dev:,} devices, {m_sess:,} sessions in {time.perf_counter() - t:.0f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)", flush=True)
    return path


def measure(store: Path, args: list[str], command: str | None = None) -> dict[str, float]:
    """`plantwatch ARGS` under /usr/bin/time -v, where "STORE" in ARGS is a fresh copy of `store`."""
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        copy = Path(tmp) / "store.sqlite"
        shutil.copyfile(store, copy)
        cmd = ["/usr/bin/time", "-v", command or str(Path(sys.executable).parent / "plantwatch"),
               *[str(copy) if a == "STORE" else a.replace("TMP", tmp) for a in args]]
        t = time.perf_counter()
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    err = done.stderr

    def field(name: str) -> float:
        m = re.search(rf"{re.escape(name)}: ([0-9.:]+)", err)
        return float(m.group(1)) if m else float("nan")
    return {"rss_mb": field("Maximum resident set size (kbytes)") / 1024,
            "cpu_s": field("User time (seconds)") + field("System time (seconds)"), "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=200_000)
    ap.add_argument("--sessions", type=int, nargs="+", default=[1_000_000, 2_000_000],
                    help="one store per count (cached in bench/.cache)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--out", type=Path, help="write one store there instead of measuring")
    ap.add_argument("--measure", type=Path, help="capture to analyse into each store "
                    "(default: tests/data/real/s7comm_snap7.pcap)")
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--command", help="the plantwatch command to measure (default: this venv's), "
                    "e.g. a wrapper running another checkout for a before/after comparison")
    ap.add_argument("--skip", nargs="*", default=[], choices=["summary", "json", "html"],
                    help="outputs not to measure (json: analyze --json; html: report --html)")
    args = ap.parse_args(argv)
    if args.out:
        write(args.out, args.devices, args.sessions[0], args.seed)
        return 0
    capture = args.measure or (HERE.parent / "tests" / "data" / "real" / "s7comm_snap7.pcap")
    if not capture.exists():
        raise SystemExit(f"{capture}: no such capture")
    print(f"analyze {capture.name} into a store of {args.devices:,} devices and N sessions (summary, --json), "
          "then report --html on it (/usr/bin/time -v)")
    print(f"{'sessions':>10} {'output':>7} {'peak RSS MB':>12} {'CPU s':>7} {'wall s':>7}")
    for m in args.sessions:
        store = cached(args.devices, m, args.seed, args.regenerate)
        analyze = ["analyze", str(capture), "--store", "STORE"]
        for label, run in (("summary", analyze), ("json", [*analyze, "--json"]),
                           ("html", ["report", "--store", "STORE", "--html", "TMP/report.html"])):
            if label in args.skip:
                continue
            r = measure(store, run, args.command)
            print(f"{m:>10,} {label:>7} {r['rss_mb']:>12.0f} {r['cpu_s']:>7.1f} {r['wall_s']:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
