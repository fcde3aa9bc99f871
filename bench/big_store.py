"""A big store, quickly: N devices and M sessions written straight through the store's writers.

`python bench/big_store.py --devices 200000 --sessions 2000000 --out big.sqlite` writes, with one
fixed seed (numpy's default_rng), N internal devices in 10.0.0.0/8 and M sessions between them
(about 8 % of them failed, a tenth with ICS operations), plus the baseline rows those devices
would have, in one bulk transaction per table (Store.bulk, Store.upsert): the same rows the
pipeline writes, without reading packets. It holds no pipeline state (open sessions, inventory):
a later run starts its inventory from what it reads, as a fresh sensor would.

`--measure CAPTURE` then runs `plantwatch analyze CAPTURE --store <copy of the big store>`
(plain and `--json`) under /usr/bin/time -v and prints peak RSS, CPU seconds and wall time:
`make bench` runs it at 1M and 2M sessions with 200k devices (issue 17 measured 2.2 GB and 4.4 GB
before the report stopped reading whole tables).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from plantwatch.core.decode.addr import ip_to_text
from plantwatch.core.flows.schema import SESSION_OPS, SESSIONS
from plantwatch.core.inventory.devices import DEVICES
from plantwatch.core.store.database import Store

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
VERSION = 1
CHUNK = 200_000
T0 = 1_735_689_600 * 10**9    # 2025-01-01T00:00:00Z, packet time of the first session
SPAN_NS = 7 * 86_400 * 10**9  # sessions spread over a week
V4_HI = 0                     # IPv4 as the store keeps it: hi 0, lo 0xFFFF << 32 | address
V4_LO_BASE = 0xFFFF << 32
NET = 10 << 24

# (server port, app code as decode.schema numbers it, proto): a plant's usual mix
_SERVICES = [(502, 0, 6), (102, 0, 6), (443, 0, 6), (53, 0, 17), (445, 0, 6), (3389, 0, 6), (20000, 0, 6)]
_STATES_TCP = ["closed", "established", "reset", "refused", "unanswered"]
_STATE_P = [0.55, 0.3, 0.07, 0.04, 0.04]


def _signed(a: np.ndarray) -> np.ndarray:
    return a.astype(np.uint64).view(np.int64)


def _address(n: np.ndarray) -> np.ndarray:
    """Device index -> IPv4 10.x.y.z (lo half, unsigned)."""
    return (V4_LO_BASE | (NET + 1 + n)).astype(np.uint64)


def devices_frame(n: int, rng: np.random.Generator) -> pl.DataFrame:
    idx = np.arange(n, dtype=np.int64)
    lo = _address(idx)
    ips = [ip_to_text(0, int(v)) for v in lo]
    first = T0 + rng.integers(0, SPAN_NS // 2, n)
    roles = np.array(["workstation", "plc", "hmi", "server", "unknown"])[rng.integers(0, 5, n)]
    data = {c: pl.Series(c, [None] * n, dtype=dt) for c, dt in DEVICES.items()}
    data.update({
        "device": pl.Series(ips), "hi": pl.Series(np.zeros(n, dtype=np.uint64)), "lo": pl.Series(lo),
        "ip": pl.Series(ips), "mac": pl.Series((0x001B1B000000 + idx).astype(np.uint64)),
        "vendor": pl.Series(["Siemens"] * n), "zone": pl.Series(["plant"] * n),
        "zone_kind": pl.Series(["ot"] * n), "vlan": pl.Series(np.zeros(n, dtype=np.int32)),
        "role": pl.Series(roles), "role_reasons": pl.Series(["generated"] * n),
        "first_ts": pl.Series(first), "last_ts": pl.Series(first + SPAN_NS // 2),
        "names": pl.Series([[]] * n, dtype=pl.List(pl.String())),
        "ics_used": pl.Series([[]] * n, dtype=pl.List(pl.String())),
        "ics_served": pl.Series([[]] * n, dtype=pl.List(pl.String())),
        "is_router": pl.Series([False] * n),
    })
    for c in ("pkts_sent", "pkts_recv", "bytes_sent", "bytes_recv", "sessions_client", "sessions_server",
              "failed_client", "peers", "clients", "servers", "ics_clients", "ics_servers_read",
              "read_ops", "discover_ops", "action_ops", "reprogram_ops", "server_clients"):
        data[c] = pl.Series(c, rng.integers(0, 1000, n), dtype=pl.Int64)
    return pl.DataFrame(data).select(list(DEVICES))


def sessions_frame(start: int, m: int, n_dev: int, rng: np.random.Generator) -> pl.DataFrame:
    sid = np.arange(start, start + m, dtype=np.int64) * 2654435761 % (1 << 62) + 1
    client = rng.integers(0, n_dev, m)
    server = (client + 1 + rng.integers(0, max(1, n_dev - 1), m)) % n_dev
    svc = rng.integers(0, len(_SERVICES), m)
    port = np.array([s[0] for s in _SERVICES], dtype=np.int32)[svc]
    proto = np.array([s[2] for s in _SERVICES], dtype=np.uint8)[svc]
    state = np.array(_STATES_TCP)[rng.choice(len(_STATES_TCP), m, p=_STATE_P)]
    state = np.where((proto == 17) & (state != "unanswered"), "answered", state)
    first = T0 + np.sort(rng.integers(0, SPAN_NS, m))
    pk = rng.integers(1, 40, m)
    frame = np.arange(start, start + m, dtype=np.int64) + 1
    zeros64 = np.zeros(m, dtype=np.int64)
    cols: dict[str, object] = {c: pl.Series(c, [None] * m, dtype=dt) for c, dt in SESSIONS.items() if c != "ops"}
    cols.update({
        "session_id": sid, "proto": proto, "state": state, "app": np.zeros(m, dtype=np.uint8),
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
        "to_group": np.zeros(m, dtype=bool), "n_ops": np.where(port == 502, pk, 0),
    })
    out = pl.DataFrame({k: (v if isinstance(v, pl.Series) else pl.Series(k, v)) for k, v in cols.items()})
    return out.with_columns(pl.col(c).reinterpret(signed=True) for c in
                            ("client_hi", "client_lo", "server_hi", "server_lo", "client_mac", "server_mac"))


def session_ops_frame(sessions: pl.DataFrame) -> pl.DataFrame:
    """Modbus reads (function 3) on the sessions to port 502, one row each."""
    s = sessions.filter(pl.col("server_port") == 502)
    return s.select(
        "session_id", "client_hi", "client_lo", "server_hi", "server_lo", "server_port",
        pl.col("client_hi").alias("src_hi"), pl.col("client_lo").alias("src_lo"),
        pl.col("server_hi").alias("dst_hi"), pl.col("server_lo").alias("dst_lo"),
        pl.lit(0, pl.UInt8).alias("app"), pl.lit(3, pl.Int32).alias("code"), pl.lit(1, pl.UInt8).alias("cls"),
        pl.lit("Read Holding Registers").alias("name"), pl.lit(True).alias("from_client"),
        pl.lit(True).alias("requests"), pl.col("n_ops").alias("count"), pl.lit(0, pl.Int64).alias("exceptions"),
        "first_file", "first_frame").select(list(SESSION_OPS))


def write(path: Path, n_dev: int, m_sess: int, seed: int = 17) -> None:
    from plantwatch.core.decode.schema import APP_NAMES

    rng = np.random.default_rng(seed)
    modbus = next(k for k, v in APP_NAMES.items() if v == "modbus")
    with Store(path) as store, store.bulk():
        devs = devices_frame(n_dev, rng)
        store.upsert("devices", devs.with_columns(
            pl.col(c).reinterpret(signed=True) for c in ("hi", "lo", "mac")).with_columns(
            pl.lit("[]").alias(c) for c in ("names", "ics_used", "ics_served")).with_columns(
            pl.col("is_router").cast(pl.Int8)))
        for start in range(0, m_sess, CHUNK):
            chunk = sessions_frame(start, min(CHUNK, m_sess - start), n_dev, rng)
            chunk = chunk.with_columns(pl.when(pl.col("server_port") == 502).then(modbus)
                                       .otherwise(0).cast(pl.UInt8).alias("app"))
            store.upsert("sessions", chunk)
            store.upsert("session_ops", session_ops_frame(chunk).with_columns(pl.lit(modbus, pl.UInt8).alias("app")))
        store.upsert("baseline_devices", devs.select(
            "device", pl.col("hi").reinterpret(signed=True), pl.col("lo").reinterpret(signed=True),
            pl.lit("mature").alias("maturity"), pl.lit("generated").alias("reasons"), "first_ts", "last_ts",
            pl.col("sessions_client").alias("sessions"), "peers", pl.lit("[502]").alias("ports_used"),
            pl.lit("[]").alias("ports_served"), pl.col("read_ops").alias("ics_ops")))


def cached(n_dev: int, m_sess: int, seed: int = 17, regenerate: bool = False) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"big-store-v{VERSION}-seed{seed}-{n_dev}d-{m_sess}s.sqlite"
    if regenerate or not path.exists():
        tmp = path.with_suffix(".tmp")
        for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}.lock")):
            p.unlink(missing_ok=True)
        t = time.perf_counter()
        write(tmp, n_dev, m_sess, seed)
        tmp.rename(path)
        print(f"wrote {path.name}: {n_dev:,} devices, {m_sess:,} sessions in {time.perf_counter() - t:.0f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)", flush=True)
    return path


def measure(store: Path, capture: Path, extra: list[str], command: str | None = None) -> dict[str, float]:
    """`plantwatch analyze capture --store <copy of store>` under /usr/bin/time -v."""
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        copy = Path(tmp) / "store.sqlite"
        shutil.copyfile(store, copy)
        cmd = ["/usr/bin/time", "-v", command or str(Path(sys.executable).parent / "plantwatch"), "analyze", str(capture),
               "--store", str(copy), *extra]
        t = time.perf_counter()
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"analyze failed ({done.returncode}): {done.stderr[-2000:]}")
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
    args = ap.parse_args(argv)
    if args.out:
        write(args.out, args.devices, args.sessions[0], args.seed)
        return 0
    capture = args.measure or (HERE.parent / "tests" / "data" / "real" / "s7comm_snap7.pcap")
    if not capture.exists():
        raise SystemExit(f"{capture}: no such capture")
    print(f"analyze {capture.name} into a store of {args.devices:,} devices and N sessions (/usr/bin/time -v)")
    print(f"{'sessions':>10} {'output':>7} {'peak RSS MB':>12} {'CPU s':>7} {'wall s':>7}")
    for m in args.sessions:
        store = cached(args.devices, m, args.seed, args.regenerate)
        for label, extra in (("summary", []), ("--json", ["--json"])):
            r = measure(store, capture, extra, args.command)
            print(f"{m:>10,} {label:>7} {r['rss_mb']:>12.0f} {r['cpu_s']:>7.1f} {r['wall_s']:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
